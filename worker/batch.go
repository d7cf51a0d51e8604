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
	msg   jetstream.Msg
	meta  *jetstream.MsgMetadata
	event *persona.Event
}

// handleBatch decodes msgs, applies the events to the store in one call and settles every
// message: Ack once the store confirmed it, NakWithDelay when this event failed, dead letter
// and Term when the body is not an event or the store calls the event invalid (permanent).
//
// When the store fails as a whole, every event of the batch is nak'd with the next pause
// delay and handleBatch returns that delay and false; nothing is acknowledged. shuttingDown
// makes such naks immediate instead, so another replica takes the messages at once.
func (w *Worker) handleBatch(ctx context.Context, shuttingDown bool, msgs []jetstream.Msg) (time.Duration, bool) {
	w.metrics.batchSize.Observe(float64(len(msgs)))
	deliveries := make([]delivery, 0, len(msgs))
	events := make([]*persona.Event, 0, len(msgs))
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil {
			// Not a JetStream message: nothing to apply, nothing to dead-letter it by.
			w.log.Error("message without jetstream metadata", "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		ev, err := persona.ParseEvent(m.Data())
		if err != nil {
			w.deadLetterAndTerm(ctx, m, meta, ReasonMalformed, err)
			continue
		}
		deliveries = append(deliveries, delivery{msg: m, meta: meta, event: ev})
		events = append(events, ev)
	}
	if len(events) == 0 {
		return 0, true
	}

	start := w.opts.Now()
	results, err := w.opts.Store.ApplyBatch(ctx, events)
	w.metrics.applyDuration.Observe(w.opts.Now().Sub(start).Seconds())
	if err == nil && len(results) != len(events) {
		err = fmt.Errorf("store returned %d results for %d events", len(results), len(events))
	}
	if err != nil {
		delay := w.pause.NextBackOff()
		if w.storeDownSince.IsZero() {
			w.storeDownSince = w.opts.Now()
			w.log.Warn("state store failed, pausing", "events", len(events), "retry_in", delay, "err", err)
		} else {
			w.log.Debug("state store failed again", "events", len(events), "retry_in", delay, "err", err)
		}
		for _, d := range deliveries {
			w.metrics.events.WithLabelValues(eventLabel(d.event.Name), resultFailed).Inc()
			w.nak(d.msg, delay, shuttingDown)
		}
		return delay, false
	}
	if !w.storeDownSince.IsZero() {
		w.log.Info("state store back", "down_for", w.opts.Now().Sub(w.storeDownSince).Round(time.Millisecond))
		w.storeDownSince = time.Time{}
	}
	w.pause.Reset()

	for i, d := range deliveries {
		r := results[i]
		label := eventLabel(d.event.Name)
		if errors.Is(r.Err, state.ErrInvalidEvent) {
			// Permanent: retrying cannot help.
			w.deadLetterAndTerm(ctx, d.msg, d.meta, ReasonInvalid, r.Err)
			continue
		}
		if r.Err != nil {
			delay := w.opts.retryDelay(d.meta.NumDelivered)
			w.metrics.events.WithLabelValues(label, resultFailed).Inc()
			w.log.Warn("event not applied, will retry", "event_id", d.event.ID, "event", d.event.Name,
				"inquiry_id", d.event.InquiryID, "delivery", d.meta.NumDelivered,
				"max_deliver", w.opts.MaxDeliver, "retry_in", delay, "err", r.Err)
			w.nak(d.msg, delay, shuttingDown)
			continue
		}
		w.metrics.events.WithLabelValues(label, resultLabel(r.Outcome)).Inc()
		if err := d.msg.Ack(); err != nil {
			// JetStream redelivers it and the store recognises the event id.
			w.log.Warn("ack message", "event_id", d.event.ID, "err", err)
		}
	}
	return 0, true
}

// nak asks for redelivery after delay, or at once while shutting down.
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
