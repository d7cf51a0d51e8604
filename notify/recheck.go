package notify

import (
	"context"
	"time"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// Rechecker reads inquiries' current status from Persona, up to 100 per call; *persona.Client
// implements it.
type Rechecker interface {
	InquiriesByID(ctx context.Context, ids []string, fields ...string) ([]*persona.Inquiry, error)
}

// recheckBatch is the most ids one InquiriesByID call takes (PERSONA.md §7).
const recheckBatch = 100

// recheckClaims asks Persona, 100 at a time, about the claims whose newest event is older
// than RecheckAfter (and that carry no send intent), and returns the status of those it no
// longer lists as created/pending. A failed call checks nothing: the reminders go on as
// they would without the check.
func (s *Scheduler) recheckClaims(ctx context.Context, claims []state.Claim) map[string]persona.Status {
	if s.recheck == nil || s.recheckAfter <= 0 || len(claims) == 0 {
		return nil
	}
	now := s.now()
	var ids []string
	for _, c := range claims {
		if c.Intent == "" && c.Status.Resumable() && !c.LastEventAt.IsZero() && now.Sub(c.LastEventAt) > s.recheckAfter {
			ids = append(ids, c.InquiryID)
		}
	}
	var finished map[string]persona.Status
	for len(ids) > 0 {
		batch := ids[:min(len(ids), recheckBatch)]
		ids = ids[len(batch):]
		current, err := s.recheck.InquiriesByID(ctx, batch, "status", "expires-at", "updated-at")
		if err != nil {
			s.log.WarnContext(ctx, "re-check before reminding failed; reminding as tracked", "inquiries", len(batch), "err", err.Error())
			continue
		}
		for _, inq := range current {
			if inq.Status != "" && !inq.Status.Resumable() {
				if finished == nil {
					finished = map[string]persona.Status{}
				}
				finished[inq.ID] = inq.Status
			}
		}
	}
	return finished
}

// dropRechecked settles a claim whose inquiry Persona says is no longer created/pending: its
// reminders are dropped (OutcomeNotResumable), without a link minted or a message sent. The
// event that tells the store will come with the webhook, or with reconciliation.
func (s *Scheduler) dropRechecked(ctx context.Context, c state.Claim, claimedAt time.Time, status persona.Status) error {
	lt := s.leaseTimes(c, claimedAt)
	log := s.log.With("inquiry_id", c.InquiryID)
	err := s.settle(ctx, log, c, lt, "drop reminders", func(ctx context.Context) error {
		return s.store.DropReminders(ctx, c, OutcomeNotResumable)
	})
	if err == nil {
		if due := s.dueStages(c, s.now()); len(due) > 0 {
			s.countAll(due[len(due)-1], OutcomeNotResumable)
		}
		log.InfoContext(ctx, "reminders dropped: persona says the inquiry moved on", "outcome", OutcomeNotResumable,
			"persona_status", string(status))
	}
	return err
}
