package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resumer/resumer/internal/eventstream"
)

// HeaderDeadMsgID is set on a dead letter: the Nats-Msg-Id the message had in the events
// stream, which is the Persona event id. The dead letter's own Nats-Msg-Id is
// "dlq-<stream>-<sequence>", so copying the same message twice stores it once.
const HeaderDeadMsgID = "Resumer-Dead-Msg-Id"

// original is a message of the events stream on its way to the dead-letter stream.
type original struct {
	subject string
	seq     uint64
	header  nats.Header
	data    []byte
}

// deadLetterMsg builds the dead letter of o: the same body and headers, JetStream's own
// Nats-* headers left out (they would steer the publish), and the Resumer-Dead-* headers.
func deadLetterMsg(stream, dlq string, o original, reason string) *nats.Msg {
	suffix := strings.TrimPrefix(o.subject, eventstream.SubjectPrefix)
	if suffix == "" {
		suffix = "_"
	}
	m := nats.NewMsg(eventstream.DLQSubject(dlq, suffix))
	m.Data = o.data
	for k, vs := range o.header {
		if !isJetStreamHeader(k) {
			m.Header[k] = append([]string(nil), vs...)
		}
	}
	if id := o.header.Get(nats.MsgIdHdr); id != "" {
		m.Header.Set(HeaderDeadMsgID, id)
	}
	m.Header.Set(nats.MsgIdHdr, "dlq-"+stream+"-"+strconv.FormatUint(o.seq, 10))
	m.Header.Set(eventstream.HeaderDeadReason, reason)
	m.Header.Set(eventstream.HeaderDeadSubject, o.subject)
	m.Header.Set(eventstream.HeaderDeadSequence, strconv.FormatUint(o.seq, 10))
	return m
}

// isJetStreamHeader reports whether a header is one JetStream interprets or adds (Nats-Msg-Id,
// Nats-Expected-*, Nats-TTL, Nats-Rollup, ...).
func isJetStreamHeader(k string) bool {
	return len(k) >= 5 && strings.EqualFold(k[:5], "Nats-")
}

// deadLetter publishes the dead letter of o and waits for the dead-letter stream's PubAck. A
// copy another replica (or an earlier attempt) already stored is not an error; only a copy
// stored by this call counts in resumer_worker_dead_letters_total.
func (w *Worker) deadLetter(ctx context.Context, o original, reason string) error {
	m := deadLetterMsg(w.opts.Stream, w.opts.DLQStream, o, reason)
	ack, err := w.js.PublishMsg(ctx, m, jetstream.WithExpectStream(w.opts.DLQStream))
	if err != nil {
		return fmt.Errorf("publish dead letter of %s seq %d to %s: %w", w.opts.Stream, o.seq, w.opts.DLQStream, err)
	}
	if !ack.Duplicate {
		w.metrics.deadLetters.WithLabelValues(reason).Inc()
	}
	return nil
}

// maxDeliveriesSubject is the subject of the advisory JetStream publishes when consumer
// durable of stream gives up on a message after MaxDeliver deliveries.
func maxDeliveriesSubject(stream, durable string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + durable
}

// maxDeliveriesAdvisory is the part of JetStream's io.nats.jetstream.advisory.v1.max_deliver
// advisory the worker reads.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// watchAdvisories dead-letters the message of every max-deliveries advisory until ctx is
// done. Every replica receives each advisory; the dead letter's Nats-Msg-Id makes the copies
// one.
func (w *Worker) watchAdvisories(ctx context.Context, stream jetstream.Stream, advisories <-chan *nats.Msg) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-advisories:
			var adv maxDeliveriesAdvisory
			if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
				w.log.Warn("unreadable max-deliveries advisory", "subject", m.Subject, "err", err)
				continue
			}
			if adv.Stream != w.opts.Stream || adv.Consumer != w.opts.Durable {
				continue
			}
			w.deadLetterExhausted(ctx, stream, adv)
		}
	}
}

// deadLetterExhausted copies the message an advisory names from the events stream to the
// dead-letter stream, retrying for a minute. The advisory is not sent again, so a message it
// cannot copy (every replica failing for a minute, or the message already aged out of the
// stream) stays only in the events stream; that is logged as an error.
func (w *Worker) deadLetterExhausted(ctx context.Context, stream jetstream.Stream, adv maxDeliveriesAdvisory) {
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(200*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second),
		backoff.WithMaxElapsedTime(time.Minute),
	)
	op := func() error {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		raw, err := stream.GetMsg(octx, adv.StreamSeq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return backoff.Permanent(fmt.Errorf("get message %d from %s: %w", adv.StreamSeq, w.opts.Stream, err))
		}
		if err != nil {
			return fmt.Errorf("get message %d from %s: %w", adv.StreamSeq, w.opts.Stream, err)
		}
		letter := original{subject: raw.Subject, seq: raw.Sequence, header: raw.Header, data: raw.Data}
		return w.deadLetter(octx, letter, ReasonMaxDeliveries)
	}
	if err := backoff.Retry(op, backoff.WithContext(bo, ctx)); err != nil {
		if ctx.Err() == nil {
			w.log.Error("dead-letter message after max deliveries", "seq", adv.StreamSeq,
				"deliveries", adv.Deliveries, "err", err)
		}
		return
	}
	w.log.Warn("message dead-lettered after max deliveries", "seq", adv.StreamSeq,
		"deliveries", adv.Deliveries, "dlq", w.opts.DLQStream)
}
