package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// Reason says why an inquiry cannot be resumed; it is the `reason` of GET
// /v1/inquiries/{inquiry_id}.
type Reason string

// The reasons an inquiry is not resumable.
const (
	// ReasonStatus: the status is final (completed, failed, needs_review, approved, declined,
	// redacted), unknown to resumer, or not told by any event yet.
	ReasonStatus Reason = "status"
	// ReasonExpired: the inquiry expired (or its expires-at passed before Persona said so)
	// and resuming expired inquiries is off, or it expired longer ago than allowed.
	ReasonExpired Reason = "expired"
	// ReasonExpiring: less than the minimum time is left before it expires.
	ReasonExpiring Reason = "expiring"
	// ReasonTooOld: the inquiry was created longer ago than the maximum age
	// (RESUMER_RESUME_MAX_AGE): a newer template version may have been published since.
	ReasonTooOld Reason = "too_old"
	// ReasonStaleVersion: the inquiry is pinned to a template version older than the
	// template's current published one (RESUMER_RESUME_CURRENT_VERSION_ONLY).
	ReasonStaleVersion Reason = "stale_version"
)

// verdict is the outcome of the resume rules for one inquiry at one time.
type verdict struct {
	resumable bool
	reason    Reason
	detail    string
	// fallbackURL is the static link to start over (link.FallbackURL), when offered.
	fallbackURL string
}

// check applies the resume rules (PERSONA.md §6, §8) to the tracked state of inq at now:
// created and pending inquiries with at least minRemaining left are resumable; an expired
// one (by status, or by an expires-at already past) only when expiredWithin is set and it
// expired no longer ago than that. An inquiry without a known expires-at is judged by its
// status alone: Persona has the last word.
func (s *Server) check(inq *state.Inquiry, now time.Time) verdict {
	if max := s.maxAge(inq.TemplateID); max > 0 && !inq.CreatedAt.IsZero() && now.Sub(inq.CreatedAt) > max &&
		(inq.Status.Resumable() || inq.Status == persona.StatusExpired) {
		return verdict{reason: ReasonTooOld, detail: fmt.Sprintf(
			"The inquiry was created more than %s ago and is not resumed any more: its template may have changed since.",
			shortDuration(max))}
	}
	switch {
	case inq.Status.Resumable() && (inq.ExpiresAt.IsZero() || now.Before(inq.ExpiresAt)):
		if left := inq.ExpiresAt.Sub(now); !inq.ExpiresAt.IsZero() && left < s.minRemaining {
			return verdict{reason: ReasonExpiring, detail: fmt.Sprintf(
				"The inquiry expires in %s, less than the %s a session needs; it cannot be resumed now.",
				shortDuration(left.Round(time.Second)), shortDuration(s.minRemaining))}
		}
		return verdict{resumable: true}
	case inq.Status.Resumable() || inq.Status == persona.StatusExpired:
		expiredAt := inq.ExpiredAt
		if expiredAt.IsZero() || inq.Status.Resumable() {
			expiredAt = inq.ExpiresAt
		}
		if s.expiredWithin > 0 && !expiredAt.IsZero() && now.Sub(expiredAt) <= s.expiredWithin {
			return verdict{resumable: true}
		}
		return verdict{reason: ReasonExpired, detail: "The inquiry has expired and cannot be resumed."}
	case inq.Status == "":
		return verdict{reason: ReasonStatus, detail: "The inquiry's status is not known yet."}
	default:
		return verdict{reason: ReasonStatus, detail: fmt.Sprintf(
			"The inquiry's status is %s; only created and pending inquiries can be resumed.", inq.Status)}
	}
}

// failure returns the problem of a verdict that is not resumable: 409 with
// inquiry_expiring or invalid_inquiry_state.
func (v verdict) failure() *failure {
	var f *failure
	switch v.reason {
	case ReasonExpiring:
		f = fail(http.StatusConflict, CodeInquiryExpiring, v.detail)
	case ReasonTooOld, ReasonStaleVersion:
		f = fail(http.StatusConflict, CodeInquiryTooOld, v.detail)
	default:
		f = fail(http.StatusConflict, CodeInvalidInquiryState, v.detail)
	}
	f.fallbackURL = v.fallbackURL
	return f
}

// judge applies every resume rule to inq now: the tracked state (check), then, when
// CurrentVersionOnly is set, the template version (one Persona call per template per cache
// period), and adds the fallback link to a refusal when the template offers one.
func (s *Server) judge(ctx context.Context, inq *state.Inquiry) verdict {
	v := s.check(inq, s.now())
	if v.resumable {
		switch stale, err := persona.Superseded(ctx, s.versions, inq.TemplateID, inq.TemplateVersionID); {
		case err != nil:
			// The template's version is unknown for now: the tracked rules decide.
			s.logger.WarnContext(ctx, "current template version unknown; not checked", "inquiry_id", inq.ID, "err", err.Error())
		case stale:
			v = verdict{reason: ReasonStaleVersion, detail: "The inquiry was started on an older version of its template and is not resumed any more."}
		}
	}
	return s.withFallback(v, inq)
}

// maxAge is the maximum age of a resumable inquiry of template; 0 means no limit.
func (s *Server) maxAge(template string) time.Duration {
	if d, ok := s.maxAgeByTemplate[template]; ok {
		return d
	}
	return s.maxAgeDefault
}

// withFallback adds the fallback link to a refusal when the inquiry's template opts in
// (never for a status that may still finish, such as expiring: only when resuming is over).
func (s *Server) withFallback(v verdict, inq *state.Inquiry) verdict {
	if v.resumable || v.reason == ReasonExpiring || !s.fallbacks.Offers(inq.TemplateID) {
		return v
	}
	if inq.Status != persona.StatusFailed && inq.Status != persona.StatusExpired && !inq.Status.Resumable() {
		return v // completed, approved, ...: nothing to start again
	}
	v.fallbackURL = link.FallbackURL(s.hostedFlowURL, inq.TemplateID, inq.ReferenceID)
	return v
}

// InquiryView is the body of GET /v1/inquiries/{inquiry_id}: the tracked state, without any
// personal data.
type InquiryView struct {
	InquiryID string         `json:"inquiry_id"`
	Status    persona.Status `json:"status"`
	// ExpiresAt is null when not known.
	ExpiresAt   *time.Time `json:"expires_at"`
	ReferenceID string     `json:"reference_id"`
	Resumable   bool       `json:"resumable"`
	// Reason is set when Resumable is false.
	Reason Reason `json:"reason,omitempty"`
	// FallbackURL, when the inquiry cannot be resumed and its template opts in, starts a new
	// inquiry for the same reference id (no session token).
	FallbackURL string `json:"fallback_url,omitempty"`
}

// serveInquiry serves RouteInquiry.
func (s *Server) serveInquiry(w http.ResponseWriter, r *http.Request, rq *request) {
	_, inq, f := s.prepare(w, r, rq, ScopeInquiriesRead)
	if f != nil {
		rq.problem(w, f)
		return
	}
	v := s.judge(r.Context(), inq)
	view := InquiryView{
		InquiryID:   inq.ID,
		Status:      inq.Status,
		ReferenceID: inq.ReferenceID,
		Resumable:   v.resumable,
		Reason:      v.reason,
		FallbackURL: v.fallbackURL,
	}
	if !inq.ExpiresAt.IsZero() {
		at := inq.ExpiresAt.UTC()
		view.ExpiresAt = &at
	}
	writeJSON(w, http.StatusOK, view)
}

// prepare runs the checks every /v1/ route starts with, in this order: the key (401), its
// scope (403), its rate (429), the inquiry id's form (400, before any lookup), the body
// (413/400), the tracked inquiry (404, 503) and the key's reference prefix (404 too: a key
// learns nothing about the inquiries it does not cover, not even that they exist).
func (s *Server) prepare(w http.ResponseWriter, r *http.Request, rq *request, scope Scope) (*APIKey, *state.Inquiry, *failure) {
	key, f := s.authorize(w, r, rq, scope)
	if f != nil {
		return nil, nil, f
	}
	if f := s.limitKey(r, key); f != nil {
		return nil, nil, f
	}
	id := r.PathValue("inquiry_id")
	if !inquiryIDPattern.MatchString(id) {
		return nil, nil, fail(http.StatusBadRequest, CodeInvalidRequest,
			"The inquiry id must be inq_ followed by 1 to 64 letters and digits.")
	}
	rq.inquiryID = id
	if f := readBody(w, r); f != nil {
		return nil, nil, f
	}
	inq, f := s.lookup(r, id)
	if f != nil {
		return nil, nil, f
	}
	if !key.covers(inq.ReferenceID) {
		// The same answer as an unknown inquiry; only the log line tells them apart.
		rq.note = "outside reference prefix"
		return nil, nil, notFound()
	}
	return key, inq, nil
}

// limitKey counts one request of key against its rate: 429 when over, 503 when Redis fails.
func (s *Server) limitKey(r *http.Request, key *APIKey) *failure {
	a, err := s.store.AllowAPIRequest(r.Context(), key.Name, s.keyRate, keyRateWindow)
	if err != nil {
		return &failure{status: http.StatusServiceUnavailable, code: CodeServiceUnavailable,
			detail: "The service is temporarily unavailable.", retryAfter: storeRetryAfter, err: err}
	}
	if !a.Allowed {
		return &failure{status: http.StatusTooManyRequests, code: CodeRateLimited,
			detail: fmt.Sprintf("The API key is limited to %d requests per minute.", s.keyRate), retryAfter: a.RetryAfter}
	}
	return nil
}

// lookup reads the tracked inquiry: 404 when unknown, 503 when Redis fails.
func (s *Server) lookup(r *http.Request, id string) (*state.Inquiry, *failure) {
	inq, err := s.store.Inquiry(r.Context(), id)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return nil, notFound()
	case err != nil:
		return nil, &failure{status: http.StatusServiceUnavailable, code: CodeServiceUnavailable,
			detail: "The service is temporarily unavailable.", retryAfter: storeRetryAfter, err: err}
	}
	return inq, nil
}

// notFound is the answer for an inquiry that is unknown or that the key does not cover.
func notFound() *failure {
	return fail(http.StatusNotFound, CodeNotFound, "No inquiry with this id is known.")
}

// readBody reads and checks an optional request body: empty, or a JSON object (whose members
// are ignored) of at most maxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) *failure {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	err := checkOptionalJSON(body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return fail(http.StatusRequestEntityTooLarge, CodeRequestTooLarge,
			fmt.Sprintf("The request body exceeds %d bytes.", maxBodyBytes))
	case err != nil:
		return fail(http.StatusBadRequest, CodeInvalidRequest, "The request body must be empty or a JSON object.")
	}
	return nil
}
