package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/promreg"
	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// WinbackStage is the stage name of win-back messages: the e-mail templates
// subject.winback.txt.tmpl, reminder.winback.txt.tmpl and reminder.winback.html.tmpl, the
// webhook channel's stage, the Message-ID.
const WinbackStage = "winback"

// Outcomes of win-back messages (resumer_winbacks_total{outcome}).
const (
	// WinbackSent: the message with a resume link went out on at least one channel.
	WinbackSent = "sent"
	// WinbackFallback: the inquiry was too old to resume; the message carried the
	// template's fallback link (start a new inquiry) instead.
	WinbackFallback = "fallback_sent"
	// WinbackTooOld: too old to resume and no fallback offered: nothing sent.
	WinbackTooOld = "too_old"
	// WinbackNoContact: no channel could reach the user.
	WinbackNoContact = "no_contact"
	// WinbackGone: the inquiry was no longer expired (revived or finished) when claimed.
	WinbackGone = "gone"
	// WinbackFailed: minting or sending failed for good; the message is not tried again.
	WinbackFailed = "failed"
)

var winbackOutcomes = []string{WinbackSent, WinbackFallback, WinbackTooOld, WinbackNoContact, WinbackGone, WinbackFailed}

// WinbackStore is what win-back needs of the state store; *state.Store implements it.
type WinbackStore interface {
	ClaimWinbacks(ctx context.Context, within, lease time.Duration, limit int) ([]state.WinbackClaim, error)
	WinbackIntent(ctx context.Context, c state.WinbackClaim) error
	SettleWinback(ctx context.Context, c state.WinbackClaim, outcome string, retryAt time.Time) error
	// Apply records the resumed event of an inquiry win-back revived (persona.ResumedEvent).
	Apply(ctx context.Context, ev *persona.Event) (state.Outcome, error)
}

// WinbackOptions configure NewWinback. Store, Channels and Within are required; Redirect for
// LinkRedirect (the default), Persona for LinkOneTimeLink.
type WinbackOptions struct {
	Store    WinbackStore
	Channels []Channel
	// Within: one message once an inquiry has expired, while its expiry is younger than this.
	Within time.Duration
	// Mode is LinkRedirect (a signed /r/ link valid until the window ends; Persona is called
	// only if the user clicks, and the api role must allow resuming expired inquiries for
	// Within) or LinkOneTimeLink (resume at once, which revives the inquiry, and send
	// Persona's one-time link: two Persona calls per message).
	Mode     LinkMode
	Redirect *link.Signer
	Persona  Persona
	// MaxAge refuses inquiries created longer ago (DefaultMaxAge when zero, none when
	// negative); MaxAgeByTemplate overrides it per template.
	MaxAge           time.Duration
	MaxAgeByTemplate map[string]time.Duration
	// Fallbacks are the templates whose too-old inquiries get the fallback link instead.
	Fallbacks link.Fallbacks
	// CurrentVersions, when set, treats an inquiry pinned to a template version older than
	// the template's published one like a too-old one (RESUMER_RESUME_CURRENT_VERSION_ONLY).
	CurrentVersions persona.CurrentVersioner
	// HostedFlowURL is the base of fallback links; link.DefaultHostedFlowURL when empty.
	HostedFlowURL string
	// Interval between claims (jittered), Lease of a claim, Batch claimed at most per shard.
	Interval time.Duration
	Lease    time.Duration
	Batch    int
	Logger   *slog.Logger
	// Registerer receives resumer_winbacks_total; nil registers nowhere.
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// DefaultMaxAge is the age beyond which an inquiry is not resumed: a newer template version
// may have been published (the seed advice; RESUMER_RESUME_MAX_AGE).
const DefaultMaxAge = 30 * 24 * time.Hour

// Winback sends one message to the users whose inquiry expired less than Within ago: it
// claims each such inquiry once (state.Store.ClaimWinbacks), records its intent before
// sending (so a crash never makes it send twice) and settles the outcome. It plugs into no
// part of the reminder scheduler: its own schedule in Redis, keyed off the expiry.
type Winback struct {
	o        WinbackOptions
	log      *slog.Logger
	outcomes *prometheus.CounterVec
}

// NewWinback returns a Winback. It fails on a missing Store or channel, a non-positive
// Within, a mode other than redirect and one-time-link, or the mode's missing dependency.
func NewWinback(o WinbackOptions) (*Winback, error) {
	switch {
	case o.Store == nil || len(o.Channels) == 0:
		return nil, errors.New("create win-back: store and channels are required")
	case o.Within <= 0:
		return nil, errors.New("create win-back: within must be positive")
	}
	if o.Mode == "" {
		o.Mode = LinkRedirect
	}
	switch o.Mode {
	case LinkRedirect:
		if o.Redirect == nil {
			return nil, errors.New("create win-back: redirect links need a signer")
		}
		if err := o.Redirect.Validate(); err != nil {
			return nil, fmt.Errorf("create win-back: %w", err)
		}
	case LinkOneTimeLink:
		if o.Persona == nil {
			return nil, errors.New("create win-back: one-time links need the persona client")
		}
	default:
		return nil, fmt.Errorf("create win-back: link mode %q: want redirect or one-time-link", o.Mode)
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Winback{o: o, log: o.Logger.With("component", "winback")}
	w.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "resumer_winbacks_total",
		Help: "Win-back messages to users whose inquiry expired, by outcome: sent, fallback_sent, too_old, no_contact, gone, failed.",
	}, []string{"outcome"})
	if o.Registerer != nil {
		w.outcomes = promreg.Register(o.Registerer, w.outcomes)
	}
	for _, out := range winbackOutcomes {
		w.outcomes.WithLabelValues(out)
	}
	return w, nil
}

// Run claims and sends win-backs every Interval until ctx ends, then returns nil.
func (w *Winback) Run(ctx context.Context) error {
	w.log.Info("win-back started", "within", w.o.Within.String(), "mode", string(w.o.Mode))
	for {
		if _, err := w.Once(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("win-back round failed", "err", err.Error())
		}
		t := time.NewTimer(w.o.Interval + time.Duration(mrand.Int64N(int64(w.o.Interval/5)+1)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Once claims what is due and handles it; it returns the outcome of each claim by inquiry
// id. The error is the claim's (Redis); a failure of one message is its outcome.
func (w *Winback) Once(ctx context.Context) (map[string]string, error) {
	claims, err := w.o.Store.ClaimWinbacks(ctx, w.o.Within, w.o.Lease, w.o.Batch)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(claims))
	for _, c := range claims {
		outcome, retryAt := w.handle(ctx, c)
		if outcome == "" {
			continue // lost the claim; its new holder decides
		}
		if err := w.o.Store.SettleWinback(ctx, c, outcome, retryAt); err != nil {
			w.log.Warn("settle win-back", "inquiry_id", c.Inquiry.ID, "err", err.Error())
		}
		if retryAt.IsZero() {
			w.outcomes.WithLabelValues(outcome).Inc()
			out[c.Inquiry.ID] = outcome
		}
	}
	return out, nil
}

// handle decides and sends one win-back. A non-zero retryAt asks for a later attempt (only
// before the intent); "" means the claim was lost.
func (w *Winback) handle(ctx context.Context, c state.WinbackClaim) (outcome string, retryAt time.Time) {
	inq, now := c.Inquiry, w.o.Now()
	log := w.log.With("inquiry_id", inq.ID)
	if inq.Status != persona.StatusExpired {
		return WinbackGone, time.Time{}
	}
	expiredAt := inq.ExpiredAt
	if expiredAt.IsZero() {
		expiredAt = inq.StatusAt
	}
	if expiredAt.IsZero() {
		expiredAt = inq.ExpiresAt
	}
	until := expiredAt.Add(w.o.Within)
	var url string
	result := WinbackSent
	if w.tooOld(inq, now) || w.staleVersion(ctx, inq) {
		if w.o.Fallbacks.Offers(inq.TemplateID) {
			url = link.FallbackURL(w.o.HostedFlowURL, inq.TemplateID, inq.ReferenceID)
		}
		if url == "" {
			return WinbackTooOld, time.Time{}
		}
		result = WinbackFallback
	} else {
		var err error
		if url, err = w.mint(ctx, inq, now, until); err != nil {
			if transientLinkError(err) {
				log.Warn("win-back link not minted, will retry", "err", err.Error())
				return "", now.Add(w.o.Lease) // kept claimed; retried when the lease ends
			}
			log.Warn("win-back link not minted", "err", err.Error())
			return WinbackFailed, time.Time{}
		}
	}
	if err := w.o.Store.WinbackIntent(ctx, c); err != nil {
		if errors.Is(err, state.ErrWinbackLost) {
			return "", time.Time{}
		}
		return "", now.Add(w.o.Lease)
	}
	r := &Reminder{
		InquiryID: inq.ID, ReferenceID: inq.ReferenceID, TemplateID: inq.TemplateID, Locale: inq.Locale, Stage: Stage{Name: WinbackStage},
		ExpiresAt: until, Now: now, EmailAddress: inq.EmailAddress, NameFirst: inq.NameFirst, Link: url,
	}
	sent, noContact := 0, 0
	for _, ch := range w.o.Channels {
		err := w.send(ctx, ch, r)
		switch {
		case err == nil:
			sent++
		case errors.Is(err, ErrNoContact):
			noContact++
		default:
			log.Warn("win-back not delivered", "channel", ch.Name(), "err", err.Error())
		}
	}
	switch {
	case sent > 0:
		return result, time.Time{}
	case noContact == len(w.o.Channels):
		return WinbackNoContact, time.Time{}
	}
	return WinbackFailed, time.Time{}
}

// send makes up to three attempts on one channel while it says a retry may help.
func (w *Winback) send(ctx context.Context, ch Channel, r *Reminder) error {
	var err error
	for attempt := range 3 {
		var retry bool
		if retry, err = ch.Send(ctx, r); err == nil || !retry {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * time.Second):
		}
	}
	return err
}

// mint returns the win-back's link: a signed /r/ link valid until the window ends, or
// Persona's one-time link after resuming the inquiry (recorded in the store, so that the
// reminder stages are armed for its new expiry).
func (w *Winback) mint(ctx context.Context, inq *state.Inquiry, now, until time.Time) (string, error) {
	if w.o.Mode == LinkRedirect {
		return w.o.Redirect.Sign(inq.ID, WinbackStage, until), nil
	}
	sess, err := w.o.Persona.Resume(ctx, inq.ID)
	if err != nil {
		return "", err
	}
	if ev := persona.ResumedEvent(sess.Inquiry, now); ev != nil {
		if _, err := w.o.Store.Apply(ctx, ev); err != nil {
			w.log.Warn("record resumed inquiry", "inquiry_id", inq.ID, "err", err.Error())
		}
	}
	url, _, err := w.o.Persona.GenerateOneTimeLink(ctx, inq.ID)
	return url, err
}

// staleVersion reports whether inq is pinned to an older template version than the
// published one; an unknown current version counts as not stale.
func (w *Winback) staleVersion(ctx context.Context, inq *state.Inquiry) bool {
	stale, err := persona.Superseded(ctx, w.o.CurrentVersions, inq.TemplateID, inq.TemplateVersionID)
	if err != nil {
		w.log.Warn("current template version unknown; not checked", "inquiry_id", inq.ID, "err", err.Error())
	}
	return stale
}

// tooOld reports whether inq was created longer ago than its template's maximum age.
func (w *Winback) tooOld(inq *state.Inquiry, now time.Time) bool {
	return maxAge{def: w.o.MaxAge, byTemplate: w.o.MaxAgeByTemplate}.exceeded(inq.TemplateID, inq.CreatedAt, now)
}

// maxAge is the stale-inquiry rule (RESUMER_RESUME_MAX_AGE): inquiries created longer ago
// are not resumed. def is DefaultMaxAge when zero and no limit when negative; byTemplate
// overrides it per template id (zero or negative: no limit).
type maxAge struct {
	def        time.Duration
	byTemplate map[string]time.Duration
}

// exceeded reports whether an inquiry of template created at createdAt is too old at now;
// an unknown created-at never is.
func (m maxAge) exceeded(template string, createdAt, now time.Time) bool {
	limit := cmp.Or(m.def, DefaultMaxAge)
	if d, ok := m.byTemplate[template]; ok {
		limit = d
	}
	return limit > 0 && !createdAt.IsZero() && now.Sub(createdAt) > limit
}
