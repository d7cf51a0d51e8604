package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// SessionView is the body of a 201 from POST /v1/inquiries/{inquiry_id}/sessions. The token
// and the URL carrying it are secrets (PERSONA.md §8): hand them only to the inquiry's
// authenticated user, over HTTPS, and keep them out of logs and analytics.
type SessionView struct {
	InquiryID string `json:"inquiry_id"`
	// SessionToken is Persona's session token (a JWT).
	SessionToken string `json:"session_token"`
	// SessionExpiresAt is the token's exp claim.
	SessionExpiresAt time.Time `json:"session_expires_at"`
	// InquiryExpiresAt is the inquiry's expires-at as Persona returned it with the token (an
	// expired inquiry that was resumed has a new one), else the tracked one; null when
	// neither is known.
	InquiryExpiresAt *time.Time `json:"inquiry_expires_at"`
	// HostedFlowURL opens the hosted flow with the token.
	HostedFlowURL string `json:"hosted_flow_url"`
}

// serveSessions serves RouteSessions: the rules against the tracked state, then the mint.
func (s *Server) serveSessions(w http.ResponseWriter, r *http.Request, rq *request) {
	_, inq, f := s.prepare(w, r, rq, ScopeSessionsCreate)
	if f != nil {
		rq.problem(w, f)
		return
	}
	if v := s.judge(r.Context(), inq); !v.resumable {
		rq.problem(w, v.failure())
		return
	}
	sess, f := s.mint(r.Context(), inq)
	if f != nil {
		rq.problem(w, f)
		return
	}
	view := SessionView{
		InquiryID:        inq.ID,
		SessionToken:     sess.Token,
		SessionExpiresAt: sess.ExpiresAt.UTC(),
		HostedFlowURL:    link.HostedFlowURL(s.hostedFlowURL, inq.ID, sess.Token, s.redirectURI),
	}
	if at := inquiryExpiresAt(sess, inq); !at.IsZero() {
		view.InquiryExpiresAt = &at
	}
	writeJSON(w, http.StatusCreated, view)
}

// inquiryExpiresAt is the inquiry's expires-at after a resume: Persona's answer first (it
// moves when an expired inquiry is resumed, PERSONA.md §6), else the tracked value.
func inquiryExpiresAt(sess *persona.Session, inq *state.Inquiry) time.Time {
	if sess.Inquiry != nil && !sess.Inquiry.ExpiresAt.IsZero() {
		return sess.Inquiry.ExpiresAt.UTC()
	}
	return inq.ExpiresAt.UTC()
}

// mint counts a mint against the inquiry's limit and asks Persona for a session token. The
// count is taken back when Persona answered with an error status (no session was made);
// when no answer came the mint stays counted, since Persona may have made one. Failures:
// 503 service_unavailable (Redis), 429 rate_limited (the inquiry's limit), and Persona's
// errors as personaFailure maps them.
func (s *Server) mint(ctx context.Context, inq *state.Inquiry) (*persona.Session, *failure) {
	inquiryID := inq.ID
	a, err := s.store.AllowMint(ctx, inquiryID, s.mintLimit, s.mintWindow)
	if err != nil {
		return nil, &failure{status: http.StatusServiceUnavailable, code: CodeServiceUnavailable,
			detail: "The service is temporarily unavailable.", retryAfter: storeRetryAfter, err: err}
	}
	if !a.Allowed {
		return nil, &failure{status: http.StatusTooManyRequests, code: CodeRateLimited,
			detail:     fmt.Sprintf("At most %d sessions may be created for one inquiry per %s.", s.mintLimit, shortDuration(s.mintWindow)),
			retryAfter: a.RetryAfter, err: errors.New("inquiry mint limit reached")}
	}
	rctx, cancel := context.WithTimeout(ctx, s.resumeTimeout)
	defer cancel()
	sess, err := s.persona.Resume(rctx, inquiryID)
	if err != nil {
		var apiErr *persona.APIError
		if errors.As(err, &apiErr) && apiErr.Status >= 400 {
			if uerr := s.store.UndoMint(context.WithoutCancel(ctx), inquiryID, a); uerr != nil {
				err = fmt.Errorf("%w (and %w)", err, uerr)
			}
		}
		return nil, personaFailure(err)
	}
	if sess == nil || sess.Token == "" {
		return nil, &failure{status: http.StatusBadGateway, code: CodeUpstreamUnavailable,
			detail: "Persona returned no session.", err: errors.New("resume returned no session token")}
	}
	s.metrics.minted.Inc()
	s.recordRevival(ctx, inq, sess)
	return sess, nil
}

// Recorder records an event in the state store; *state.Store implements it. When the Store
// given to New is one, a resume that revived an expired inquiry is recorded.
type Recorder interface {
	Apply(ctx context.Context, ev *persona.Event) (state.Outcome, error)
}

// recordRevival records that the resume made an expired inquiry pending again
// (persona.ResumedEvent): Persona sends no webhook for it (PERSONA.md §6), and without the
// record the state would stay expired and no reminder stage would be armed for the new
// expiry. A failure is logged: the token is the user's either way.
func (s *Server) recordRevival(ctx context.Context, inq *state.Inquiry, sess *persona.Session) {
	rec, ok := s.store.(Recorder)
	now := s.now()
	expired := inq.Status == persona.StatusExpired || !inq.ExpiresAt.IsZero() && !now.Before(inq.ExpiresAt)
	if !ok || sess.Inquiry == nil || !expired {
		return
	}
	ev := persona.ResumedEvent(sess.Inquiry, now)
	if ev == nil {
		return
	}
	if _, err := rec.Apply(context.WithoutCancel(ctx), ev); err != nil {
		s.logger.WarnContext(ctx, "record revived inquiry", "inquiry_id", inq.ID, "err", err.Error())
	}
}

// personaFailure maps a failed resume: Persona does not know the inquiry 404; its status does
// not allow resuming (resumer's state lagged behind) 409; Persona down, rate limited or too
// slow 503 with Retry-After; anything else Persona answered (our key refused, the inquiry's
// session cap, an unusable response) 502.
func personaFailure(err error) *failure {
	var apiErr *persona.APIError
	retry := upstreamRetryAfter
	if errors.As(err, &apiErr) && apiErr.RetryAfter > retry {
		retry = apiErr.RetryAfter
	}
	switch {
	case errors.Is(err, persona.ErrNotFound):
		return &failure{status: http.StatusNotFound, code: CodeNotFound,
			detail: "Persona does not know this inquiry.", err: err}
	case errors.Is(err, persona.ErrNotResumable):
		return &failure{status: http.StatusConflict, code: CodeInvalidInquiryState,
			detail: "Persona says the inquiry's status does not allow resuming it.", err: err}
	case persona.IsTransient(err), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &failure{status: http.StatusServiceUnavailable, code: CodeUpstreamUnavailable,
			detail: "Persona is unavailable; try again later.", retryAfter: retry, err: err}
	default:
		return &failure{status: http.StatusBadGateway, code: CodeUpstreamUnavailable,
			detail: "Persona refused to create a session.", err: err}
	}
}

// checkOptionalJSON reads r (already capped) and checks that it holds only whitespace or a
// single JSON object. The object's members are ignored.
func checkOptionalJSON(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && (b[0] != '{' || !json.Valid(b)) {
		return errors.New("body is not a JSON object")
	}
	return nil
}
