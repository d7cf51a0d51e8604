package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// delivery is one message of a batch with what the worker read from it.
type delivery struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
}

// batch is a batch of messages decoded into events: deliveries[i] carries events[i]. Messages
// that are not events are settled by decode and not in it.
type batch struct {
	deliveries []delivery
	events     []*persona.Event
}

// decode reads msgs into a batch. A message whose body is not a Persona event is copied to the
// dead-letter stream and terminated right here (or nak'd when the copy fails). An event about
// another object than an inquiry (eventstream.OtherSubject) is acknowledged without being
// applied. An event without a time of its own takes the one the receiver stored with it.
func (w *Worker) decode(ctx context.Context, msgs []jetstream.Msg) *batch {
	w.metrics.batchSize.Observe(float64(len(msgs)))
	b := &batch{
		deliveries: make([]delivery, 0, len(msgs)),
		events:     make([]*persona.Event, 0, len(msgs)),
	}
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			// Not a JetStream message: nothing to apply, nothing to dead-letter it by.
			w.log.Error("message without jetstream metadata", "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		if w.opts.Subjects.IsOther(m.Subject()) {
			w.skip(m)
			continue
		}
		ev, err := persona.ParseEventWith(m.Data(), persona.ParseOptions{LocaleField: w.opts.LocaleField})
		if err != nil {
			w.deadLetterAndTerm(ctx, m, meta, ReasonMalformed, err)
			continue
		}
		if !ev.AboutInquiry() {
			w.skip(m)
			continue
		}
		if ev.CreatedAt.IsZero() {
			ev.CreatedAt = storedEventTime(m, meta)
		}
		b.deliveries = append(b.deliveries, delivery{msg: m, meta: meta})
		b.events = append(b.events, ev)
	}
	return b
}

// skip acknowledges a message that is no inquiry's business (PERSONA.md §4: events about
// accounts, cases, reports, transactions): it stays in the stream for an operator, and is
// counted as ignored.
func (w *Worker) skip(m jetstream.Msg) {
	w.metrics.events.WithLabelValues(eventLabel(m.Headers().Get(eventstream.HeaderEventName)), resultIgnored).Inc()
	if err := m.Ack(); err != nil {
		w.log.Debug("ack message", "subject", m.Subject(), "err", err)
	}
}

// storedEventTime is the time of an event without one of its own (PERSONA.md §3): the one
// the receiver stored with it (the payload's updated-at or the receive time), else the time
// the stream stored it.
func storedEventTime(m jetstream.Msg, meta *jetstream.MsgMetadata) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, m.Headers().Get(eventstream.HeaderEventCreatedAt)); err == nil {
		return t
	}
	return meta.Timestamp
}

// apply hands the batch's events to the store in one call and settles every message: Ack once
// the store confirmed it; dead letter and Term when the store calls the event invalid
// (permanent); for any other failure of this one event, NakWithDelay (growing delay), or dead
// letter and Term (ReasonMaxDeliveries) once the message has been delivered MaxDeliver times.
//
// When the store fails as a whole (unavailable: unreachable, or refusing writes), apply
// settles nothing and returns false: the caller holds the batch and tries again later (see
// hold). Such a failure never counts against the events, whatever their delivery count.
// shuttingDown makes the naks of failed events immediate, so another replica takes them at
// once.
func (w *Worker) apply(ctx context.Context, shuttingDown bool, b *batch) bool {
	if len(b.events) == 0 {
		return true
	}
	start := w.opts.Now()
	results, err := w.opts.Store.ApplyBatch(ctx, b.events)
	w.metrics.applyDuration.Observe(w.opts.Now().Sub(start).Seconds())
	if err == nil && len(results) != len(b.events) {
		err = fmt.Errorf("apply batch: %d results for %d events", len(results), len(b.events))
	}
	if err != nil {
		for _, ev := range b.events {
			w.metrics.events.WithLabelValues(eventLabel(ev.Name), resultFailed).Inc()
		}
		w.metrics.storeFailures.Inc()
		if w.storeDownSince.IsZero() {
			w.storeDownSince = w.opts.Now()
			w.log.Warn("state store unavailable, holding messages until it is back", "events", len(b.events), "err", err)
		} else {
			w.log.Debug("state store still unavailable", "events", len(b.events), "err", err)
		}
		return false
	}
	if !w.storeDownSince.IsZero() {
		w.log.Info("state store back", "down_for", w.opts.Now().Sub(w.storeDownSince).Round(time.Millisecond))
		w.storeDownSince = time.Time{}
	}
	w.pause.Reset()

	for i, d := range b.deliveries {
		r, ev := results[i], b.events[i]
		label := eventLabel(ev.Name)
		if errors.Is(r.Err, state.ErrInvalidEvent) {
			// Permanent: retrying cannot help.
			w.deadLetterAndTerm(ctx, d.msg, d.meta, ReasonInvalid, r.Err)
			continue
		}
		if r.Err != nil {
			if d.meta.NumDelivered >= uint64(w.opts.MaxDeliver) {
				w.deadLetterAndTerm(ctx, d.msg, d.meta, ReasonMaxDeliveries, r.Err)
				continue
			}
			delay := w.opts.retryDelay(d.meta.NumDelivered)
			w.metrics.events.WithLabelValues(label, resultFailed).Inc()
			w.log.Warn("event not applied, will retry", "event_id", ev.ID, "event", ev.Name,
				"inquiry_id", ev.InquiryID, "delivery", d.meta.NumDelivered,
				"max_deliver", w.opts.MaxDeliver, "retry_in", delay, "err", r.Err)
			w.nak(d.msg, delay, shuttingDown)
			continue
		}
		w.metrics.events.WithLabelValues(label, resultLabel(r.Outcome)).Inc()
		w.metrics.bySource.WithLabelValues(sourceLabel(d.msg.Headers().Get(eventstream.HeaderSource))).Inc()
		if err := d.msg.Ack(); err != nil {
			// JetStream redelivers it and the store recognises the event id.
			w.log.Warn("ack message", "event_id", ev.ID, "err", err)
		}
	}
	return true
}

// nakAll naks every message of b (see nak).
func (b *batch) nakAll(w *Worker, delay time.Duration, now bool) {
	for _, d := range b.deliveries {
		w.nak(d.msg, delay, now)
	}
}

// nak asks for redelivery after delay, or at once when now is set.
func (w *Worker) nak(m jetstream.Msg, delay time.Duration, now bool) {
	var err error
	if now {
		err = m.Nak()
	} else {
		err = m.NakWithDelay(delay)
	}
	if err != nil {
		w.log.Debug("nak message", "err", err)
	}
}

// deadLetterAndTerm copies a message that can never be applied to the dead-letter stream and
// terminates it; when the copy fails, it naks the message so a later delivery tries again.
func (w *Worker) deadLetterAndTerm(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, reason string, cause error) {
	name := m.Headers().Get(eventstream.HeaderEventName)
	w.metrics.events.WithLabelValues(eventLabel(name), resultFailed).Inc()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	letter := original{subject: m.Subject(), seq: meta.Sequence.Stream, header: m.Headers(), data: m.Data()}
	if err := w.deadLetter(pctx, letter, reason); err != nil {
		delay := w.opts.retryDelay(meta.NumDelivered)
		w.log.Error("dead-letter message, will retry", "seq", meta.Sequence.Stream, "reason", reason,
			"retry_in", delay, "err", err)
		w.nak(m, delay, false)
		return
	}
	w.log.Warn("message dead-lettered", "seq", meta.Sequence.Stream, "subject", m.Subject(),
		"msg_id", m.Headers().Get(nats.MsgIdHdr), "reason", reason, "dlq", w.opts.DLQStream, "err", cause)
	if err := m.TermWithReason(reason); err != nil {
		w.log.Warn("terminate dead-lettered message", "seq", meta.Sequence.Stream, "err", err)
	}
}
