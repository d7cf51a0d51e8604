package worker

import (
	"context"
	"fmt"
	"strconv"
	"strings"

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
