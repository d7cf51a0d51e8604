package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrLeaseLost is wrapped by RecordIntent, CompleteReminder, ReleaseClaim and DropReminders
// when the claim's lease is no longer held: it ran out and another claim took the inquiry
// over, or its record is gone. (An inquiry that stops being created/pending keeps its lease,
// so its holder still records what it sent.) Nothing was changed. It is final for that
// claim: retrying the call cannot help.
var ErrLeaseLost = errors.New("reminder lease lost")

// Settle operations of schedule_settle.lua.
const (
	settleComplete = "complete"
	settleRelease  = "release"
	settleDrop     = "drop"
	settleIntent   = "intent"
)

// RecordIntent records, under claim c's lease, that its holder is about to send stage: a
// claim that takes the lease over after it ran out unsettled gets the stage as
// Claim.Intent, and must not send it again. The lease stays held. Record the intent after
// minting the link and before the first channel sends; when it fails, send nothing.
//
// The error wraps ErrLeaseLost when c's lease is no longer held (nothing changed), says the
// stage name is invalid, or is Redis' error; after a Redis error the outcome is unknown and
// the call may be retried while the lease lasts.
func (s *Store) RecordIntent(ctx context.Context, c Claim, stage string) error {
	if stage == "" || strings.ContainsAny(stage, ",@:|") {
		return fmt.Errorf("record send intent of inquiry %s: invalid stage name %q", c.InquiryID, stage)
	}
	_, err := s.settleClaim(ctx, "record send intent", c, settleIntent, stage)
	return err
}

// CompleteReminder settles claim c after its reminder went out: stage (the stage sent, or ""
// when none was) and the stages in skipped (superseded, too late, no contact ...) are
// recorded as done, any ChannelMark entries of them are removed, the lease is cleared and the
// inquiry is scheduled at its next unsent stage, or leaves the schedule when it has none.
// With stage "" and no skipped stages it only reschedules: for a claim that had nothing due
// (say, its expires-at moved while it was leased).
//
// When c.Attribution is set and stage is not "", the reminder is counted in the funnel (see
// funnel.go) as sent or held out, atomically with the settle, so that it is counted once, and
// the inquiry's later steps are attributed to it.
//
// The error wraps ErrLeaseLost when c's lease is no longer held (nothing changed), says a
// stage name is invalid (empty, or with ',' or '@'), or is Redis' error; after a Redis error
// the outcome is unknown and the call may be retried while the lease lasts.
func (s *Store) CompleteReminder(ctx context.Context, c Claim, stage string, skipped []string) error {
	done := skipped
	if stage != "" {
		done = append(append([]string(nil), skipped...), stage)
	}
	for _, name := range done {
		if name == "" || strings.ContainsAny(name, ",@:") {
			return fmt.Errorf("complete reminder of inquiry %s: invalid stage name %q", c.InquiryID, name)
		}
	}
	dims := ""
	if !c.Attribution.IsZero() && stage != "" {
		if err := c.Attribution.validate(); err != nil {
			return fmt.Errorf("complete reminder of inquiry %s: %w", c.InquiryID, err)
		}
		dims = c.Attribution.String()
	}
	now := s.now()
	n, err := s.settleClaim(ctx, "complete reminder", c, settleComplete, strings.Join(done, ","),
		dims, s.funnelExpireAt(now.UnixMilli()), now.UnixMilli())
	if err == nil && dims != "" {
		steps := []string{StepReminder}
		if n == 2 {
			steps = append(steps, StepInquiry)
		}
		s.funnel.count(c.Attribution, steps, -1)
	}
	return err
}

// ReleaseClaim settles claim c after a transient failure: the lease is cleared, the
// inquiry's attempts count (Claim.Attempts) goes up by one and it is due again at retryAt,
// when any ClaimDue may claim it. marks (built with ChannelMark) record the channels already
// done with the stage, so that the retry skips them; CompleteReminder removes them.
//
// The error wraps ErrLeaseLost when c's lease is no longer held (nothing changed), says a
// mark is malformed, or is Redis' error.
func (s *Store) ReleaseClaim(ctx context.Context, c Claim, retryAt time.Time, marks ...string) error {
	for _, m := range marks {
		if strings.Count(m, "@") != 1 || strings.ContainsAny(m, ",:") || strings.HasPrefix(m, "@") || strings.HasSuffix(m, "@") {
			return fmt.Errorf("release reminder claim of inquiry %s: malformed channel mark %q", c.InquiryID, m)
		}
	}
	_, err := s.settleClaim(ctx, "release reminder claim", c, settleRelease, retryAt.UnixMilli(), strings.Join(marks, ","))
	return err
}

// DropReminders settles claim c by taking the inquiry out of the reminder schedule for good,
// for example when Persona says it can no longer be resumed (409) although no event has told
// us yet. reason (bounded, no personal data) is kept in the record as
// Inquiry.RemindersDropped. An event that later makes the inquiry created/pending again or
// changes its expires-at schedules it again.
//
// The error wraps ErrLeaseLost when c's lease is no longer held (nothing changed), or is
// Redis' error.
func (s *Store) DropReminders(ctx context.Context, c Claim, reason string) error {
	if reason == "" {
		reason = "dropped"
	}
	_, err := s.settleClaim(ctx, "drop reminders", c, settleDrop, reason)
	return err
}

// settleClaim runs schedule_settle.lua for c with operation op and its extra arguments and
// returns the script's reply (1, or 2 when a complete counted the inquiry's first reminder).
func (s *Store) settleClaim(ctx context.Context, what string, c Claim, op string, extra ...any) (int, error) {
	if c.InquiryID == "" || c.LeaseToken == "" {
		return 0, fmt.Errorf("%s: claim without inquiry id or lease token", what)
	}
	shard := s.keys.shard(c.InquiryID)
	bucket, _ := s.funnelBucket(shard, s.now())
	call := scriptCall{
		keys: []string{s.keys.records(shard), s.keys.queue(shard), s.keys.cursors(shard), s.keys.leases(shard),
			s.keys.templates(shard), bucket},
		args: append([]any{op, handleOf(c.InquiryID), c.LeaseToken, s.stageArg}, extra...),
	}
	cmds, err := s.runScript(ctx, s.settle, []scriptCall{call})
	if err != nil {
		return 0, fmt.Errorf("%s of inquiry %s: %w", what, c.InquiryID, err)
	}
	n, err := cmds[0].Int()
	if err != nil {
		return 0, fmt.Errorf("%s of inquiry %s: %w", what, c.InquiryID, err)
	}
	if n < 1 {
		return 0, fmt.Errorf("%s of inquiry %s: %w", what, c.InquiryID, ErrLeaseLost)
	}
	return n, nil
}
