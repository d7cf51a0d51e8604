package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// settleAttemptTimeout bounds one store call that records a send intent or settles a claim;
// the calls are retried until the claim's deadline (see leaseTimes).
const settleAttemptTimeout = 2 * time.Second

// leaseTimes are the deadlines of one claim on its holder's clock, from the lease left when
// Redis answered the claim (measured from before the call, so the holder errs early).
type leaseTimes struct {
	// work: minting, recording the intent and sending end by then (half the lease).
	work time.Time
	// settle: settling is retried until then (a tenth of the lease before its end), so a
	// settle budget of at least 0.4 of the lease is left after the work.
	settle time.Time
}

// leaseTimes returns claim c's deadlines; claimedAt is when its ClaimDue call started.
func (s *Scheduler) leaseTimes(c state.Claim, claimedAt time.Time) leaseTimes {
	end := claimedAt.Add(c.LeaseLeft)
	return leaseTimes{work: end.Add(-s.lease / 2), settle: end.Add(-s.lease / 10)}
}

// handle decides and carries out one claimed inquiry's reminder, then settles the claim. The
// returned error is a settle failure (the claim stays leased and is taken over after the
// lease, with its send intent); every other failure is classified and settled here.
// claimedAt is when the ClaimDue call that returned c started, on this process's clock.
func (s *Scheduler) handle(ctx context.Context, c state.Claim, claimedAt time.Time) error {
	lt := s.leaseTimes(c, claimedAt)
	log := s.log.With("inquiry_id", c.InquiryID)
	if c.Intent != "" {
		return s.settleUncertain(ctx, log, c, lt)
	}
	now := s.now()
	if !time.Now().Before(lt.work) {
		// Too little of the lease is left to send safely: hand the reminder back at once
		// rather than leave it to be taken over.
		log.WarnContext(ctx, "reminder claim waited out half its lease; released")
		return s.settle(ctx, log, c, lt, "release reminder claim", func(ctx context.Context) error {
			return s.store.ReleaseClaim(ctx, c, now)
		})
	}
	work, cancel := context.WithDeadline(ctx, lt.work)
	defer cancel()

	if !c.Status.Resumable() || c.ExpiresAt.IsZero() {
		// The claim is the re-read before sending (DESIGN.md decision 5); applying the event
		// normally takes such an inquiry out of the schedule before anyone claims it.
		return s.settle(ctx, log, c, lt, "drop reminders", func(ctx context.Context) error {
			return s.store.DropReminders(ctx, c, "status "+string(c.Status))
		})
	}
	due := s.dueStages(c, now)
	if len(due) == 0 {
		// Claimed although nothing is due (a lease takeover after the expiry moved): reschedule.
		return s.settle(ctx, log, c, lt, "reschedule reminders", func(ctx context.Context) error {
			return s.store.CompleteReminder(ctx, c, "", nil)
		})
	}
	target, superseded := due[len(due)-1], due[:len(due)-1]
	log = log.With("stage", target.Name)

	if s.maxAge.exceeded(c.TemplateID, c.CreatedAt, now) {
		err := s.settle(ctx, log, c, lt, "drop reminders", func(ctx context.Context) error {
			return s.store.DropReminders(ctx, c, OutcomeTooOld)
		})
		if err == nil {
			s.countAll(target, OutcomeTooOld)
			log.InfoContext(ctx, "reminders dropped: inquiry older than the maximum age", "outcome", OutcomeTooOld)
		}
		return err
	}

	if left := c.ExpiresAt.Sub(now); left < s.minRemaining {
		err := s.settle(ctx, log, c, lt, "skip reminders", func(ctx context.Context) error {
			return s.store.CompleteReminder(ctx, c, "", stageNames(due))
		})
		if err == nil {
			for _, st := range due {
				s.countAll(st, OutcomeSkippedTooLate)
			}
			log.InfoContext(ctx, "reminder skipped: too little time left", "outcome", OutcomeSkippedTooLate, "left", left.String())
		}
		return err
	}

	// Contact first, token second: a channel that cannot reach the user must not cost one
	// of the inquiry's sessions (PERSONA.md §6).
	done := map[string]string{} // channel -> outcome, decided in this attempt
	var pending []Channel
	for _, ch := range s.channels {
		switch {
		case c.ChannelDone(target.Name, ch.Name()):
		case ch.Name() == "email" && strings.TrimSpace(c.EmailAddress) == "":
			done[ch.Name()] = OutcomeNoContact
		default:
			pending = append(pending, ch)
		}
	}
	if len(pending) == 0 {
		return s.finish(ctx, log, c, lt, target, superseded, done, now)
	}
	if s.holdout.HeldOut(c.InquiryID) {
		names := make([]string, len(pending))
		for i, ch := range pending {
			done[ch.Name()] = OutcomeHeldOut
			names[i] = ch.Name()
		}
		c.Attribution = s.attribution(c, state.GroupHeldOut, target, names)
		return s.finish(ctx, log, c, lt, target, superseded, done, now)
	}

	link, expiresAt, err := s.link(work, c, target)
	switch {
	case err == nil:
	case errors.Is(err, persona.ErrNotResumable) || errors.Is(err, persona.ErrNotFound):
		err := s.settle(ctx, log, c, lt, "drop reminders", func(ctx context.Context) error {
			return s.store.DropReminders(ctx, c, OutcomeNotResumable)
		})
		if err == nil {
			for _, ch := range pending {
				done[ch.Name()] = OutcomeNotResumable
			}
			s.count(target, done)
			log.InfoContext(ctx, "inquiry no longer resumable at persona; reminders dropped", "outcome", OutcomeNotResumable)
		}
		return err
	case transientLinkError(err):
		return s.retry(ctx, log, c, lt, target, done, now, fmt.Errorf("mint link: %w", err))
	default:
		log.ErrorContext(ctx, "reminder link failed for good", "outcome", OutcomeFailed, "err", err.Error())
		for _, ch := range pending {
			done[ch.Name()] = OutcomeFailed
		}
		return s.finish(ctx, log, c, lt, target, superseded, done, now)
	}

	// The intent goes on record under the lease before anything is sent: a replica that takes
	// the lease over finds it and never sends the stage again.
	err = retryStore(work, lt.work, func(ctx context.Context) error { return s.store.RecordIntent(ctx, c, target.Name) })
	switch {
	case errors.Is(err, state.ErrLeaseLost):
		log.WarnContext(ctx, "reminder lease lost before sending; nothing sent", "err", err.Error())
		return nil
	case err != nil:
		return s.retry(ctx, log, c, lt, target, done, now, fmt.Errorf("record send intent: %w", err))
	}

	r := &Reminder{
		InquiryID:    c.InquiryID,
		ReferenceID:  c.ReferenceID,
		TemplateID:   c.TemplateID,
		Locale:       c.Locale,
		Stage:        target,
		ExpiresAt:    expiresAt,
		Now:          now,
		EmailAddress: c.EmailAddress,
		NameFirst:    c.NameFirst,
		Link:         link,
	}
	var transient error
	for _, ch := range pending {
		retry, err := ch.Send(work, r)
		switch {
		case err == nil:
			done[ch.Name()] = OutcomeSent
		case errors.Is(err, ErrNoContact):
			done[ch.Name()] = OutcomeNoContact
		case errors.Is(err, ErrMaybeDelivered):
			// Handed over without an answer: most likely delivered, so never sent again.
			done[ch.Name()] = OutcomeUncertain
			log.WarnContext(ctx, "reminder handed over without a reply; not sent again", "channel", ch.Name(), "outcome", OutcomeUncertain, "err", err.Error())
		case errors.Is(err, ErrUndeliverable):
			done[ch.Name()] = OutcomeUndeliverable
			log.WarnContext(ctx, "reminder address undeliverable", "channel", ch.Name(), "outcome", OutcomeUndeliverable, "err", err.Error())
		case retry:
			transient = errors.Join(transient, err)
		default:
			done[ch.Name()] = OutcomeFailed
			log.ErrorContext(ctx, "reminder delivery failed for good", "channel", ch.Name(), "outcome", OutcomeFailed, "err", err.Error())
		}
	}
	if transient != nil {
		return s.retry(ctx, log, c, lt, target, done, now, transient)
	}
	return s.finish(ctx, log, c, lt, target, superseded, done, now)
}

// dueStages returns the stages not done for c whose due time (expiry minus the stage) is at
// or before now, longest first. A stage longer than one already done (say "6h" after "1h",
// also one this replica does not know) is never due: it would reach the user after it; nor
// is a stage added to the configuration after its due time for c (Claim.StageApplies).
func (s *Scheduler) dueStages(c state.Claim, now time.Time) []Stage {
	var latest time.Duration = -1
	for _, name := range c.RemindersSent {
		if st, err := ParseStage(name); err == nil && StageName(st.Before) == name && (latest < 0 || st.Before < latest) {
			latest = st.Before
		}
	}
	var due []Stage
	for _, st := range s.stages {
		if latest >= 0 && st.Before >= latest {
			continue
		}
		at := c.ExpiresAt.Add(-st.Before)
		if !c.StageDone(st.Name) && !at.After(now) && c.StageApplies(st.Name, at) {
			due = append(due, st)
		}
	}
	return due
}

// link mints the reminder's link in the configured mode and returns it with the expiry to
// tell the user: the earlier of the session token's and the inquiry's.
func (s *Scheduler) link(ctx context.Context, c state.Claim, st Stage) (string, time.Time, error) {
	switch s.mode {
	case LinkOneTimeLink:
		link, _, err := s.persona.GenerateOneTimeLink(ctx, c.InquiryID)
		return link, c.ExpiresAt, err
	case LinkRedirect:
		return s.redirect.Sign(c.InquiryID, st.Name, c.ExpiresAt), c.ExpiresAt, nil
	default:
		sess, err := s.persona.Resume(ctx, c.InquiryID)
		if err != nil {
			return "", time.Time{}, err
		}
		// The earlier of the token's exp and the inquiry's expiry (PERSONA.md §6).
		return link.HostedFlowURL(s.hostedURL, c.InquiryID, sess.Token, s.redirectURI), sess.Until(c.ExpiresAt), nil
	}
}

// transientLinkError reports whether minting a link may succeed later: Persona rate limited
// or unavailable, the claim's time ran out, or the API key was refused (an operator fixes
// that; the reminders wait rather than being lost).
func transientLinkError(err error) bool {
	return persona.IsTransient(err) || errors.Is(err, persona.ErrUnauthorized) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// settleUncertain settles the stage whose send intent an earlier holder of c's lease recorded
// as done without sending it, and counts it as uncertain for every channel not known to be
// done with it.
func (s *Scheduler) settleUncertain(ctx context.Context, log *slog.Logger, c state.Claim, lt leaseTimes) error {
	// Most likely it went out: the funnel counts it as a reminder on every channel.
	names := make([]string, len(s.channels))
	for i, ch := range s.channels {
		names[i] = ch.Name()
	}
	c.Attribution = s.attribution(c, state.GroupReminded, Stage{Name: c.Intent}, names)
	err := s.settle(ctx, log, c, lt, "settle uncertain reminder", func(ctx context.Context) error {
		return s.store.CompleteReminder(ctx, c, c.Intent, nil)
	})
	if err != nil {
		return err
	}
	for _, ch := range s.channels {
		if !c.ChannelDone(c.Intent, ch.Name()) {
			s.metrics.reminders.WithLabelValues(c.Intent, ch.Name(), OutcomeUncertain).Inc()
		}
	}
	log.WarnContext(ctx, "reminder stage settled as uncertain: its sender's lease ran out after it recorded the intent to send",
		"stage", c.Intent, "outcome", OutcomeUncertain)
	return nil
}

// finish completes the target stage (and the superseded ones) and counts the outcomes.
func (s *Scheduler) finish(ctx context.Context, log *slog.Logger, c state.Claim, lt leaseTimes, target Stage, superseded []Stage, done map[string]string, now time.Time) error {
	if c.Attribution.IsZero() {
		var sentBy []string
		for _, ch := range s.channels {
			if o := done[ch.Name()]; o == OutcomeSent || o == OutcomeUncertain {
				sentBy = append(sentBy, ch.Name())
			}
		}
		if len(sentBy) > 0 {
			c.Attribution = s.attribution(c, state.GroupReminded, target, sentBy)
		}
	}
	err := s.settle(ctx, log, c, lt, "complete reminder", func(ctx context.Context) error {
		return s.store.CompleteReminder(ctx, c, target.Name, stageNames(superseded))
	})
	if err != nil {
		return err
	}
	s.count(target, done)
	for _, st := range superseded {
		s.countAll(st, OutcomeSkippedTooLate)
	}
	sent := 0
	for _, o := range done {
		if o == OutcomeSent {
			sent++
		}
	}
	if sent > 0 {
		s.metrics.delay.Observe(max(now.Sub(c.ExpiresAt.Add(-target.Before)), 0).Seconds())
	}
	log.DebugContext(ctx, "reminder stage done", "channels_sent", sent, "superseded", len(superseded))
	return nil
}

// retry releases the claim for a later attempt after the transient failure cause, keeping
// the channels already done with the stage, and counts their outcomes.
func (s *Scheduler) retry(ctx context.Context, log *slog.Logger, c state.Claim, lt leaseTimes, target Stage, done map[string]string, now time.Time, cause error) error {
	at := s.retryAt(c, now, cause)
	marks := make([]string, 0, len(done))
	for ch := range done {
		marks = append(marks, state.ChannelMark(target.Name, ch))
	}
	err := s.settle(ctx, log, c, lt, "release reminder claim", func(ctx context.Context) error {
		return s.store.ReleaseClaim(ctx, c, at, marks...)
	})
	if err != nil {
		return err
	}
	s.count(target, done)
	// Log the first failure of a reminder and every fifth after it, not every attempt.
	level := slog.LevelDebug
	if c.Attempts%5 == 0 {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, "reminder delayed by a transient failure", "attempt", c.Attempts+1,
		"retry_in", at.Sub(now).String(), "err", cause.Error())
	return nil
}

// retryAt is when a reminder that failed transiently is due again: RetryInitial doubled per
// earlier attempt up to RetryMax, jittered by ±10%, at least the wait Persona asked for, and
// never later than MinRemaining before the expiry (the last moment it may still go out).
func (s *Scheduler) retryAt(c state.Claim, now time.Time, cause error) time.Time {
	wait := RetryMax
	if c.Attempts < 16 {
		wait = min(RetryInitial<<c.Attempts, RetryMax)
	}
	wait += time.Duration((rand.Float64()*0.2 - 0.1) * float64(wait))
	var apiErr *persona.APIError
	if errors.As(cause, &apiErr) && apiErr.RetryAfter > wait {
		wait = apiErr.RetryAfter
	}
	at := now.Add(wait)
	if last := c.ExpiresAt.Add(-s.minRemaining); at.After(last) {
		at = last
	}
	if at.Before(now) {
		at = now
	}
	return at
}

// settle runs a store call that settles claim c, retrying it with backoff until lt.settle on
// a context that ignores ctx's cancellation (a reminder that went out is marked sent even
// during shutdown). A lost lease is logged and not an error: the claim was taken over.
func (s *Scheduler) settle(ctx context.Context, log *slog.Logger, c state.Claim, lt leaseTimes, what string, call func(context.Context) error) error {
	err := retryStore(context.WithoutCancel(ctx), lt.settle, call)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, state.ErrLeaseLost):
		log.WarnContext(ctx, "reminder lease lost before settling", "op", what, "err", err.Error())
		return nil
	}
	return fmt.Errorf("%s of inquiry %s: gave up near the end of the lease: %w", what, c.InquiryID, err)
}

// retryStore runs call, a store call under a claim's lease, until it succeeds, fails with
// state.ErrLeaseLost (not retried), ctx ends or until passes: exponential backoff from 50 ms
// to 1 s, each attempt bounded by settleAttemptTimeout. The error is the last attempt's,
// joined with the context's when time ran out.
func retryStore(ctx context.Context, until time.Time, call func(context.Context) error) error {
	ctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	b := backoff.NewExponentialBackOff(backoff.WithInitialInterval(50*time.Millisecond),
		backoff.WithMaxInterval(time.Second), backoff.WithMaxElapsedTime(0))
	var last error
	err := backoff.Retry(func() error {
		actx, acancel := context.WithTimeout(ctx, settleAttemptTimeout)
		defer acancel()
		err := call(actx)
		if errors.Is(err, state.ErrLeaseLost) {
			return backoff.Permanent(err)
		}
		if err != nil {
			last = err
		}
		return err
	}, backoff.WithContext(b, ctx))
	if err != nil && last != nil && !errors.Is(err, last) {
		return errors.Join(last, err)
	}
	return err
}

// count adds one to the reminders counter of stage per channel in done.
func (s *Scheduler) count(st Stage, done map[string]string) {
	for ch, o := range done {
		s.metrics.reminders.WithLabelValues(st.Name, ch, o).Inc()
	}
}

// countAll adds one to the reminders counter of stage for every channel, with outcome o.
func (s *Scheduler) countAll(st Stage, o string) {
	for _, ch := range s.channels {
		s.metrics.reminders.WithLabelValues(st.Name, ch.Name(), o).Inc()
	}
}

// stageNames returns the stages' names.
func stageNames(stages []Stage) []string {
	names := make([]string, len(stages))
	for i, st := range stages {
		names[i] = st.Name
	}
	return names
}

// attribution describes a reminder of stage st to c's inquiry for the funnel: group, the
// channels (joined by '+', in configured order), the link mode and the inquiry's brand.
func (s *Scheduler) attribution(c state.Claim, group string, st Stage, channels []string) state.Attribution {
	a := state.Attribution{
		Group:    group,
		Stage:    st.Name,
		Channel:  strings.Join(channels, "+"),
		LinkMode: string(s.mode),
	}
	if s.brands != nil {
		a.Brand = s.brands.For(c.TemplateID, c.ReferenceID).ID // For never returns nil
	}
	return a
}
