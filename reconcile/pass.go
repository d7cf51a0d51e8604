package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// Checkpoint fields (state.Store.SaveCheckpoint under LeaseName).
const (
	// cpSince: unix ms; the next replay reads events created since then (minus Overlap).
	cpSince = "events_since"
	// cpFrom, cpAfter, cpUntil: a replay in progress: its start, the last event id done
	// (the page cursor) and the newest created-at seen, which becomes cpSince at its end.
	cpFrom  = "events_from"
	cpAfter = "events_after"
	cpUntil = "events_until"
	// cpOpen: the re-check walk in progress (state.OpenCursor's text); absent between walks.
	cpOpen = "open_cursor"
)

// recheckFields is the sparse fieldset of the re-check: no personal data (PERSONA.md §7).
var recheckFields = []string{"status", "expires-at", "updated-at"}

// pass is one reconciliation pass.
type pass struct {
	r      *Reconciler
	opts   PassOptions
	token  string // lease token; "" in a dry run
	report *Report
	cp     map[string]string
}

func (p *pass) run(ctx context.Context) error {
	cp, err := p.r.opts.Store.Checkpoint(ctx, LeaseName)
	if err != nil {
		return err
	}
	p.cp = cp
	if err := p.replay(ctx); err != nil {
		return fmt.Errorf("replay events: %w", err)
	}
	if err := p.recheck(ctx); err != nil {
		return fmt.Errorf("re-check open inquiries: %w", err)
	}
	return nil
}

// save writes checkpoint fields, fenced by the lease; a dry run saves nothing.
func (p *pass) save(ctx context.Context, fields map[string]string) error {
	if p.opts.DryRun {
		return nil
	}
	for k, v := range fields {
		p.cp[k] = v
	}
	return p.r.opts.Store.SaveCheckpoint(ctx, LeaseName, p.token, fields)
}

func msString(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func msTime(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// replay publishes the events Persona lists since the checkpoint (PERSONA.md §2, §7).
func (p *pass) replay(ctx context.Context) error {
	o := p.r.opts
	start := o.Now()
	var from, until time.Time
	after := ""
	switch {
	case p.opts.Since > 0:
		from = start.Add(-p.opts.Since)
	case p.cp[cpAfter] != "" && !msTime(p.cp[cpFrom]).IsZero():
		// Continue the replay a crash or a lost lease interrupted.
		from, after, until = msTime(p.cp[cpFrom]), p.cp[cpAfter], msTime(p.cp[cpUntil])
		p.r.log.Info("continuing an interrupted replay", "from", from, "after", after)
	case !msTime(p.cp[cpSince]).IsZero():
		from = msTime(p.cp[cpSince]).Add(-o.Overlap)
	default:
		from = start.Add(-o.Lookback)
	}
	p.report.EventsFrom = from
	lastPage := 0
	for le, err := range o.Persona.ListEvents(ctx, persona.EventFilter{
		Names: o.EventNames, CreatedAtStart: from, After: after, PageSize: 100,
	}) {
		if err != nil {
			// The pages done are in the stream: the next pass continues after them.
			if lastPage > 0 && after != "" {
				if serr := p.save(ctx, map[string]string{cpFrom: msString(from), cpAfter: after, cpUntil: msString(until)}); serr != nil {
					p.r.log.Warn("save replay progress", "err", serr.Error())
				}
			}
			return err
		}
		if le.Page != lastPage {
			// A new page: what the previous ones held is safely in the stream.
			if lastPage > 0 && after != "" {
				if err := p.save(ctx, map[string]string{cpFrom: msString(from), cpAfter: after, cpUntil: msString(until)}); err != nil {
					return err
				}
			}
			lastPage = le.Page
			p.report.EventPages++
			p.r.metrics.pages.WithLabelValues(pageEvents).Inc()
		}
		p.report.EventsSeen++
		if le.Event == nil {
			p.report.EventsUnparsed++
			p.r.metrics.events.WithLabelValues(eventUnparsed).Inc()
			p.r.log.Debug("listed event not replayable", "event_id", le.ID, "err", le.Err)
		} else {
			if le.Event.CreatedAt.After(until) {
				until = le.Event.CreatedAt
			}
			if !p.opts.DryRun {
				dup, err := p.publish(ctx, le.Event, le.Body, eventstream.SourceReplay)
				if err != nil {
					return err
				}
				if dup {
					p.report.EventsDuplicate++
					p.r.metrics.events.WithLabelValues(eventDuplicate).Inc()
				} else {
					p.report.EventsPublished++
					p.r.metrics.events.WithLabelValues(eventPublished).Inc()
				}
			}
		}
		if le.ID != "" {
			after = le.ID
		}
	}
	if lastPage == 0 {
		// An empty answer is still a call.
		p.report.EventPages++
		p.r.metrics.pages.WithLabelValues(pageEvents).Inc()
	}
	// Next time, read from what this replay has seen, or from when it started, whichever is
	// later (Overlap covers events Persona lists late); never move the checkpoint back.
	since := start
	if until.After(since) {
		since = until
	}
	if old := msTime(p.cp[cpSince]); old.After(since) {
		since = old
	}
	p.r.metrics.lag.Set(max(o.Now().Sub(since), 0).Seconds())
	return p.save(ctx, map[string]string{cpSince: msString(since), cpFrom: "", cpAfter: "", cpUntil: ""})
}

// recheck compares every tracked open inquiry with Persona, 100 per call.
func (p *pass) recheck(ctx context.Context) error {
	o := p.r.opts
	var cursor state.OpenCursor
	if p.opts.Since <= 0 && p.cp[cpOpen] != "" {
		c, err := state.ParseOpenCursor(p.cp[cpOpen])
		if err != nil {
			p.r.log.Warn("ignoring a malformed re-check cursor", "err", err.Error())
		} else {
			cursor = c
		}
	}
	for {
		tracked, next, done, err := o.Store.OpenInquiries(ctx, cursor, o.BatchSize)
		if err != nil {
			return err
		}
		if len(tracked) > 0 {
			if err := p.compare(ctx, tracked); err != nil {
				return err
			}
		}
		cursor = next
		text := cursor.String()
		if done {
			text = ""
		}
		if err := p.save(ctx, map[string]string{cpOpen: text}); err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// compare asks Persona for one batch of tracked inquiries and publishes a synthetic event for
// every difference, in updated-at order.
func (p *pass) compare(ctx context.Context, tracked []*state.Inquiry) error {
	o := p.r.opts
	ids := make([]string, len(tracked))
	for i, t := range tracked {
		ids[i] = t.ID
	}
	current, err := o.Persona.InquiriesByID(ctx, ids, recheckFields...)
	p.report.InquiryPages++
	p.r.metrics.pages.WithLabelValues(pageInquiries).Inc()
	if err != nil {
		return err
	}
	p.report.Checked += len(tracked)
	p.r.metrics.checked.Add(float64(len(tracked)))
	byID := make(map[string]*persona.Inquiry, len(current))
	for _, c := range current {
		byID[c.ID] = c
	}
	var diffs []Difference
	for _, t := range tracked {
		c := byID[t.ID]
		if c == nil {
			p.report.Missing = append(p.report.Missing, t.ID)
			p.r.metrics.differences.WithLabelValues(diffMissing).Inc()
			continue
		}
		if d, ok := differ(t, c, o.Now()); ok {
			diffs = append(diffs, d)
		}
	}
	slices.SortStableFunc(diffs, func(a, b Difference) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	for _, d := range diffs {
		p.r.metrics.differences.WithLabelValues(d.Kind).Inc()
		p.report.Differences = append(p.report.Differences, d)
		if p.opts.DryRun {
			continue
		}
		ev, body := syntheticEvent(d)
		if _, err := p.publish(ctx, ev, body, eventstream.SourceSynthetic); err != nil {
			return err
		}
	}
	return nil
}

// differ compares a tracked inquiry with Persona's current view: another status, or (same
// status) an expires-at that differs by a second or more.
func differ(t *state.Inquiry, c *persona.Inquiry, now time.Time) (Difference, bool) {
	d := Difference{
		InquiryID: t.ID, Tracked: t.Status, Current: c.Status,
		TrackedExpiresAt: t.ExpiresAt, CurrentExpiresAt: c.ExpiresAt, UpdatedAt: c.UpdatedAt,
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = now.UTC().Truncate(time.Millisecond)
	}
	switch {
	case c.Status != "" && c.Status != t.Status:
		d.Kind = diffStatus
		d.EventName = eventFor(c.Status)
	case !c.ExpiresAt.IsZero() && absDuration(c.ExpiresAt.Sub(t.ExpiresAt)) >= time.Second:
		d.Kind = diffExpiry
		d.EventName = "inquiry.transitioned"
	default:
		return d, false
	}
	h := sha256.Sum256([]byte(d.InquiryID + "|" + string(c.Status) + "|" + msString(c.ExpiresAt) + "|" + msString(d.UpdatedAt)))
	d.EventID = eventstream.SyntheticIDPrefix + hex.EncodeToString(h[:12])
	return d, true
}

func absDuration(d time.Duration) time.Duration { return max(d, -d) }

// eventFor is the event Persona sends when an inquiry reaches status (PERSONA.md §4);
// inquiry.transitioned, which carries the status in its payload, for statuses without one.
func eventFor(s persona.Status) string {
	for _, name := range DefaultEventNames() {
		if st, ok := persona.StatusForEvent(name); ok && st == s {
			return name
		}
	}
	return "inquiry.transitioned"
}

// syntheticEvent renders a difference as an event in Persona's envelope (PERSONA.md §3),
// with only the attributes the re-check read, and "resumer-synthetic": true.
func syntheticEvent(d Difference) (*persona.Event, []byte) {
	ts := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	doc := map[string]any{"data": map[string]any{
		"type": "event", "id": d.EventID,
		"attributes": map[string]any{
			"name": d.EventName, "created-at": ts(d.UpdatedAt), "resumer-synthetic": true,
			"payload": map[string]any{"data": map[string]any{
				"type": "inquiry", "id": d.InquiryID,
				"attributes": map[string]any{
					"status": string(d.Current), "expires-at": ts(d.CurrentExpiresAt), "updated-at": ts(d.UpdatedAt),
				},
			}},
		},
	}}
	body, _ := json.Marshal(doc) // maps of strings and bools always encode
	ev := &persona.Event{ID: d.EventID, Name: d.EventName, CreatedAt: d.UpdatedAt, InquiryID: d.InquiryID, PayloadType: "inquiry"}
	return ev, body
}

// publish stores one event in the events stream the way the webhook receiver does, with the
// source header, retrying transient failures for about a minute. dup reports that the
// stream already held the event id (its duplicate window).
func (p *pass) publish(ctx context.Context, ev *persona.Event, body []byte, source string) (dup bool, err error) {
	o := p.r.opts
	msg := o.Subjects.Message(ev, body, o.Now())
	msg.Header.Set(eventstream.HeaderSource, source)
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 200 * time.Millisecond
	bo.MaxElapsedTime = time.Minute
	var ack *jetstream.PubAck
	err = backoff.Retry(func() error {
		pctx, cancel := context.WithTimeout(ctx, o.PublishTimeout)
		defer cancel()
		a, err := o.Publisher.PublishMsg(pctx, msg, jetstream.WithExpectStream(o.Stream))
		if err != nil {
			if ctx.Err() != nil {
				return backoff.Permanent(ctx.Err())
			}
			return err
		}
		if a == nil || a.Stream != o.Stream {
			return backoff.Permanent(errors.New("no acknowledgement from that stream"))
		}
		ack = a
		return nil
	}, backoff.WithContext(bo, ctx))
	if err != nil {
		return false, fmt.Errorf("publish event %s to stream %s: %w", ev.ID, o.Stream, err)
	}
	return ack.Duplicate, nil
}
