package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

const (
	// settleAttempts and settleTimeout bound the store calls that settle a claim; they run
	// detached from the sweep's cancellation, so a reminder that went out is marked sent
	// even during shutdown.
	settleAttempts = 3
	settleTimeout  = 5 * time.Second
)

// handle decides and carries out one claimed inquiry's reminder, then settles the claim. The
// returned error is a settle failure (the claim stays leased and is taken over after the
// lease); every other failure is classified and settled here.
func (s *Scheduler) handle(ctx context.Context, c state.Claim, claimedAt time.Time) error {
	deadline := claimedAt.Add(s.lease * 3 / 4)
	if !time.Now().Before(deadline) {
		// Too little of the lease is left to send safely; another sweep takes it over.
		s.log.WarnContext(ctx, "reminder claim waited out its lease; left to be taken over", "inquiry_id", c.InquiryID)
		return nil
	}
	work, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	now := s.now()
	log := s.log.With("inquiry_id", c.InquiryID)

	if !c.Status.Resumable() || c.ExpiresAt.IsZero() {
		// The claim is the re-read before sending (DESIGN.md decision 5); applying the event
		// normally takes such an inquiry out of the schedule before anyone claims it.
		return s.settle(ctx, log, c, "drop reminders", func(ctx context.Context) error {
			return s.store.DropReminders(ctx, c, "status "+string(c.Status))
		})
	}
	due := s.dueStages(c, now)
	if len(due) == 0 {
		// Claimed although nothing is due (a lease takeover after the expiry moved): reschedule.
		return s.settle(ctx, log, c, "reschedule reminders", func(ctx context.Context) error {
			return s.store.CompleteReminder(ctx, c, "", nil)
		})
	}
	target, superseded := due[len(due)-1], due[:len(due)-1]
	log = log.With("stage", target.Name)

	if left := c.ExpiresAt.Sub(now); left < s.minRemaining {
		err := s.settle(ctx, log, c, "skip reminders", func(ctx context.Context) error {
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
		return s.finish(ctx, log, c, target, superseded, done, now)
	}
	if s.holdout.HeldOut(c.InquiryID) {
		names := make([]string, len(pending))
		for i, ch := range pending {
			done[ch.Name()] = OutcomeHeldOut
			names[i] = ch.Name()
		}
		c.Attribution = s.attribution(state.GroupHeldOut, target, names)
		return s.finish(ctx, log, c, target, superseded, done, now)
	}

	link, expiresAt, err := s.link(work, c, target)
	switch {
	case err == nil:
	case errors.Is(err, persona.ErrNotResumable) || errors.Is(err, persona.ErrNotFound):
		err := s.settle(ctx, log, c, "drop reminders", func(ctx context.Context) error {
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
		return s.retry(ctx, log, c, target, done, now, fmt.Errorf("mint link: %w", err))
	default:
		log.ErrorContext(ctx, "reminder link failed for good", "outcome", OutcomeFailed, "err", err.Error())
		for _, ch := range pending {
			done[ch.Name()] = OutcomeFailed
		}
		return s.finish(ctx, log, c, target, superseded, done, now)
	}

	r := &Reminder{
		InquiryID:    c.InquiryID,
		ReferenceID:  c.ReferenceID,
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
		case retry:
			transient = errors.Join(transient, err)
		default:
			done[ch.Name()] = OutcomeFailed
			log.ErrorContext(ctx, "reminder delivery failed for good", "channel", ch.Name(), "outcome", OutcomeFailed, "err", err.Error())
		}
	}
	if transient != nil {
		return s.retry(ctx, log, c, target, done, now, transient)
	}
	return s.finish(ctx, log, c, target, superseded, done, now)
}

// dueStages returns the stages not done for c whose due time (expiry minus the stage) is at
// or before now, longest first.
func (s *Scheduler) dueStages(c state.Claim, now time.Time) []Stage {
	var due []Stage
	for _, st := range s.stages {
		if !c.StageDone(st.Name) && !c.ExpiresAt.Add(-st.Before).After(now) {
			due = append(due, st)
		}
	}
	return due
}

// link mints the reminder's link in the configured mode and returns it with the expiry to
// tell the user: the session token's when Persona says, else the inquiry's.
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
		expires := c.ExpiresAt
		if !sess.ExpiresAt.IsZero() {
			expires = sess.ExpiresAt
		}
		return link.HostedFlowURL(s.hostedURL, c.InquiryID, sess.Token, s.redirectURI), expires, nil
	}
}

// transientLinkError reports whether minting a link may succeed later: Persona rate limited
// or unavailable, the claim's time ran out, or the API key was refused (an operator fixes
// that; the reminders wait rather than being lost).
func transientLinkError(err error) bool {
	return persona.IsTransient(err) || errors.Is(err, persona.ErrUnauthorized) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// finish completes the target stage (and the superseded ones) and counts the outcomes.
func (s *Scheduler) finish(ctx context.Context, log *slog.Logger, c state.Claim, target Stage, superseded []Stage, done map[string]string, now time.Time) error {
	if c.Attribution.IsZero() {
		var sentBy []string
		for _, ch := range s.channels {
			if done[ch.Name()] == OutcomeSent {
				sentBy = append(sentBy, ch.Name())
			}
		}
		if len(sentBy) > 0 {
			c.Attribution = s.attribution(state.GroupReminded, target, sentBy)
		}
	}
	err := s.settle(ctx, log, c, "complete reminder", func(ctx context.Context) error {
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
func (s *Scheduler) retry(ctx context.Context, log *slog.Logger, c state.Claim, target Stage, done map[string]string, now time.Time, cause error) error {
	at := s.retryAt(c, now, cause)
	marks := make([]string, 0, len(done))
	for ch := range done {
		marks = append(marks, state.ChannelMark(target.Name, ch))
	}
	err := s.settle(ctx, log, c, "release reminder claim", func(ctx context.Context) error {
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

// settle runs a store call that settles claim c, retrying other errors than ErrLeaseLost a
// few times on a context that ignores ctx's cancellation. A lost lease is logged and not an
// error: the claim is someone else's now, or the inquiry moved on.
func (s *Scheduler) settle(ctx context.Context, log *slog.Logger, c state.Claim, what string, call func(context.Context) error) error {
	base := context.WithoutCancel(ctx)
	var err error
	for attempt := range settleAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		}
		sctx, cancel := context.WithTimeout(base, settleTimeout)
		err = call(sctx)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, state.ErrLeaseLost) {
			log.WarnContext(ctx, "reminder lease lost before settling", "op", what, "err", err.Error())
			return nil
		}
	}
	return fmt.Errorf("give up after %d attempts: %w", settleAttempts, err)
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

// attribution describes a reminder of stage st for the funnel: group, the channels (joined
// by '+', in configured order), the link mode and the brand.
func (s *Scheduler) attribution(group string, st Stage, channels []string) state.Attribution {
	return state.Attribution{
		Group:    group,
		Stage:    st.Name,
		Channel:  strings.Join(channels, "+"),
		LinkMode: string(s.mode),
		Brand:    s.brand,
	}
}
