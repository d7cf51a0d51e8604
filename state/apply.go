package state

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/resumer/resumer/persona"
)

// Outcome says what applying one event did to its inquiry's record.
type Outcome string

// The outcomes of applying an event.
const (
	// OutcomeApplied: the event changed the inquiry's data: it created the record, moved the
	// status, or set a field (reference, template, account, a time, expires-at, e-mail, name).
	OutcomeApplied Outcome = "applied"
	// OutcomeDuplicate: the event id was seen for this inquiry within Config.EventMemory;
	// nothing changed.
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeStale: a status event (PERSONA.md §4) older in event time than the event that
	// set the current status. The status stayed; fields still empty may have been filled.
	OutcomeStale Outcome = "stale"
	// OutcomeIgnored: the event told nothing new (an event about a part of the inquiry, such
	// as an inquiry session, a verification or a document; an inquiry.transitioned
	// confirming the known status and fields; an unknown event without news). Its id is
	// remembered, it may have become the record's last event (the inquiry's last activity),
	// and an event confirming the current status at a later time moves StatusAt; nothing
	// else changed. An event without an inquiry snapshot never creates a record: for an
	// inquiry without one it is ignored and not remembered.
	OutcomeIgnored Outcome = "ignored"
)

// Result is the result of applying one event of a batch.
type Result struct {
	// Outcome is what the event did; empty when Err is set.
	Outcome Outcome
	// Err says this event could not be applied: it is invalid (wraps ErrInvalidEvent,
	// permanent) or Redis answered its script with an error. Other events of the batch are
	// unaffected.
	Err error
}

// ApplyBatch applies events in one pipelined round trip: one EVALSHA of the apply script per
// event, in slice order, each atomic for its inquiry. The script is loaded into Redis on the
// first NOSCRIPT and the events that met it run again (after the others, which the order
// independence of applying makes harmless). results[i] belongs to events[i].
//
// The error is non-nil, and results nil, when the batch failed as a whole: Redis could not
// be reached, ctx ended, or Redis refused service (loading, read-only replica, out of memory,
// cluster down, authentication). Then some events may have been applied and others not;
// retrying the batch is safe because applying is idempotent.
func (s *Store) ApplyBatch(ctx context.Context, events []*persona.Event) ([]Result, error) {
	results, err := s.applyBatch(ctx, events)
	if err != nil {
		return nil, fmt.Errorf("apply batch of %d events: %w", len(events), err)
	}
	return results, nil
}

// Apply applies one event; see ApplyBatch. The error is the batch's or the event's.
func (s *Store) Apply(ctx context.Context, ev *persona.Event) (Outcome, error) {
	results, err := s.applyBatch(ctx, []*persona.Event{ev})
	if err != nil {
		id := ""
		if ev != nil {
			id = ev.ID
		}
		return "", fmt.Errorf("apply event %s: %w", id, err)
	}
	return results[0].Outcome, results[0].Err
}

func (s *Store) applyBatch(ctx context.Context, events []*persona.Event) ([]Result, error) {
	results := make([]Result, len(events))
	calls := make([]scriptCall, 0, len(events))
	index := make([]int, 0, len(events))
	now := s.now().UnixMilli()
	for i, ev := range events {
		c, err := s.applyCall(ev, now)
		if err != nil {
			results[i].Err = err
			continue
		}
		calls = append(calls, c)
		index = append(index, i)
	}
	if len(calls) == 0 {
		return results, nil
	}
	cmds, err := s.runScript(ctx, s.apply, calls)
	if err != nil {
		return nil, err
	}
	for j, cmd := range cmds {
		i := index[j]
		var reply string
		err := cmd.Err()
		if err == nil {
			if v, ok := cmd.Val().([]any); ok {
				reply, err = s.funnelReply(v)
			} else {
				reply, err = cmd.Text()
			}
		}
		if err != nil {
			results[i].Err = fmt.Errorf("apply event %s: %w", events[i].ID, err)
			continue
		}
		switch o := Outcome(reply); o {
		case OutcomeApplied, OutcomeDuplicate, OutcomeStale, OutcomeIgnored:
			results[i].Outcome = o
		default:
			results[i].Err = fmt.Errorf("apply event %s: unexpected script reply %q", events[i].ID, reply)
		}
	}
	return results, nil
}

// applyCall builds the apply script's keys and arguments for ev (see apply.lua for their
// order) with now as the store's clock in unix ms.
func (s *Store) applyCall(ev *persona.Event, now int64) (scriptCall, error) {
	switch {
	case ev == nil:
		return scriptCall{}, fmt.Errorf("apply event: nil event: %w", ErrInvalidEvent)
	case ev.ID == "":
		return scriptCall{}, fmt.Errorf("apply event: no event id: %w", ErrInvalidEvent)
	case ev.InquiryID == "":
		return scriptCall{}, fmt.Errorf("apply event %s: no inquiry id: %w", ev.ID, ErrInvalidEvent)
	case ev.CreatedAt.IsZero():
		return scriptCall{}, fmt.Errorf("apply event %s: no event time: %w", ev.ID, ErrInvalidEvent)
	}
	status, own := persona.StatusForEvent(ev.Name)
	inq := ev.Inquiry
	snapshot := inq != nil
	if inq == nil {
		inq = &persona.Inquiry{}
	}
	if !own {
		// An event without a status of its own may still carry the inquiry's status in its
		// payload (inquiry.transitioned, events newer than this code): it is the status at
		// the event's time, and how statuses unknown to us get recorded.
		status = inq.Status
	}
	ownFlag, snapFlag := "", ""
	if own {
		ownFlag = "own"
	}
	if snapshot {
		snapFlag = "1"
	}
	shard := s.keys.shard(ev.InquiryID)
	handle, rest := splitID(ev.InquiryID)
	args := []any{
		now,
		handle,
		eventDigest(ev.ID),
		packID(ev.ID),
		packEventName(ev.Name),
		ev.CreatedAt.UnixMilli(),
		string(status),
		ownFlag,
		snapFlag,
		inq.ReferenceID,
		inq.TemplateID,
		packID(inq.AccountID),
		unixMilli(inq.CreatedAt),
		unixMilli(inq.StartedAt),
		unixMilli(inq.CompletedAt),
		unixMilli(inq.ExpiredAt),
		inq.EmailAddress,
		inq.NameFirst,
		unixMilli(inq.ExpiresAt),
		s.interval(inq.TemplateID).Milliseconds(),
		s.cfg.EventMemory.Milliseconds(),
		s.cfg.Retention.Milliseconds(),
		purgeBudget,
		rememberedEvents,
		s.stageArg,
		rest,
		s.funnelExpireAt(now),
		winbackFlag(s.cfg.WinbackContact),
		inq.TemplateVersionID,
		inq.Locale,
	}
	keys := append(s.keys.shardKeys(shard), s.keys.funnel(shard, funnelDay(time.UnixMilli(now))))
	return scriptCall{keys: keys, args: args}, nil
}

// eventDigest is the 6-byte digest of an event id the record remembers instead of the id:
// the first bytes of its FNV-64a hash. A record remembers a handful of ids, so a collision
// (which would drop an event as a duplicate) has a chance of about 2^-45 per event.
func eventDigest(eventID string) string {
	h := fnv.New64a()
	h.Write([]byte(eventID))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], h.Sum64())
	return string(b[:6])
}

// winbackFlag is ARGV[28] of apply.lua: "1" keeps the contact of expired inquiries.
func winbackFlag(keep bool) string {
	if keep {
		return "1"
	}
	return ""
}
