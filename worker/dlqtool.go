package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resumer/resumer/internal/eventstream"
)

// DeadLetter describes one message of the dead-letter stream, without its body.
type DeadLetter struct {
	// Seq is the dead letter's sequence in the dead-letter stream: what ReplayDeadLetters takes.
	Seq uint64 `json:"seq"`
	// Subject is the subject the event was first published to.
	Subject string `json:"subject"`
	// StreamSeq is the event's sequence in the events stream.
	StreamSeq uint64 `json:"stream_seq"`
	// Reason is why it was dead-lettered: ReasonMalformed, ReasonInvalid or ReasonMaxDeliveries.
	Reason string `json:"reason"`
	// EventID is the Persona event id: the Nats-Msg-Id it was published with, without the
	// suffix a replay adds ("" if none).
	EventID string `json:"event_id"`
	// EventName is the Persona event name from the receiver's header ("" if none).
	EventName string `json:"event_name"`
	// Time is when it was dead-lettered.
	Time time.Time `json:"time"`
	// Size is the body's size in bytes.
	Size int `json:"size"`
}

// ListDeadLetters returns the first limit dead letters of the stream dlq, oldest first (all of
// them when limit <= 0). It reads headers only, never bodies. It fails when the stream does not
// exist (the error wraps jetstream.ErrStreamNotFound) or JetStream does not answer.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, dlq string, limit int) ([]DeadLetter, error) {
	letters := []DeadLetter{}
	err := eachDeadLetter(ctx, js, dlq, true, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		h := m.Headers()
		size, _ := strconv.Atoi(h.Get(nats.MsgSize))
		streamSeq, _ := strconv.ParseUint(h.Get(eventstream.HeaderDeadSequence), 10, 64)
		letters = append(letters, DeadLetter{
			Seq:       meta.Sequence.Stream,
			Subject:   h.Get(eventstream.HeaderDeadSubject),
			StreamSeq: streamSeq,
			Reason:    h.Get(eventstream.HeaderDeadReason),
			EventID:   eventID(h.Get(HeaderDeadMsgID)),
			EventName: h.Get(eventstream.HeaderEventName),
			Time:      meta.Timestamp,
			Size:      size,
		})
		if limit > 0 && len(letters) >= limit {
			return errStopIteration
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters in %s: %w", dlq, err)
	}
	return letters, nil
}

// ReplayDeadLetters publishes dead letters of the stream dlq back to the subject they were
// first published to, with their original body and headers, and deletes each from dlq once
// the events stream has acknowledged it. seqs are dead-letter sequences (DeadLetter.Seq); nil
// replays every dead letter present when the call starts (not the ones dead-lettered again
// meanwhile).
//
// A replay carries the Nats-Msg-Id "<event id>-replay-<dlq seq>" (also when the dead letter
// was itself a replay), so the events stream's
// duplicate window does not drop it while a repeated replay of the same dead letter is
// dropped; the state store deduplicates by event id in any case.
//
// It stops at the first failure and returns how many it replayed before it. A sequence that
// is not in dlq is a failure (wrapping jetstream.ErrMsgNotFound).
func ReplayDeadLetters(ctx context.Context, js jetstream.JetStream, dlq string, seqs []uint64) (int, error) {
	stream, err := js.Stream(ctx, dlq)
	if err != nil {
		return 0, fmt.Errorf("replay dead letters from %s: %w", dlq, err)
	}
	n := 0
	replay := func(seq uint64, header nats.Header, data []byte) error {
		if err := replayOne(ctx, js, seq, header, data); err != nil {
			return err
		}
		if err := stream.DeleteMsg(ctx, seq); err != nil {
			return fmt.Errorf("delete replayed dead letter %d: %w", seq, err)
		}
		n++
		return nil
	}
	if seqs == nil {
		err = eachDeadLetter(ctx, js, dlq, false, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
			return replay(meta.Sequence.Stream, m.Headers(), m.Data())
		})
	} else {
		for _, seq := range seqs {
			var raw *jetstream.RawStreamMsg
			if raw, err = stream.GetMsg(ctx, seq); err != nil {
				err = fmt.Errorf("get dead letter %d: %w", seq, err)
				break
			}
			if err = replay(seq, raw.Header, raw.Data); err != nil {
				break
			}
		}
	}
	if err != nil {
		return n, fmt.Errorf("replay dead letters from %s: %w", dlq, err)
	}
	return n, nil
}

// replayOne publishes the dead letter seq to its original subject.
func replayOne(ctx context.Context, js jetstream.JetStream, seq uint64, header nats.Header, data []byte) error {
	subject := header.Get(eventstream.HeaderDeadSubject)
	// The events subjects' prefix is the deployment's (RESUMER_SUBJECT_PREFIX); whatever it
	// is, a dead letter never goes back to a dead-letter subject.
	if subject == "" || eventstream.IsDLQSubject(subject) {
		return fmt.Errorf("replay dead letter %d: original subject %q is not an event subject", seq, subject)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	for k, vs := range header {
		if isJetStreamHeader(k) || strings.HasPrefix(k, "Resumer-Dead-") {
			continue
		}
		m.Header[k] = append([]string(nil), vs...)
	}
	id := eventID(header.Get(HeaderDeadMsgID))
	if id == "" {
		id = "unknown"
	}
	m.Header.Set(nats.MsgIdHdr, id+replaySuffix+strconv.FormatUint(seq, 10))
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("replay dead letter %d to %s: %w", seq, subject, err)
	}
	return nil
}

// replaySuffix joins an event id and a dead-letter sequence in a replay's Nats-Msg-Id.
const replaySuffix = "-replay-"

// eventID returns the event id in a Nats-Msg-Id: the id itself, or the part before the
// "-replay-<seq>" a replay added.
func eventID(msgID string) string {
	i := strings.LastIndex(msgID, replaySuffix)
	if i <= 0 {
		return msgID
	}
	if _, err := strconv.ParseUint(msgID[i+len(replaySuffix):], 10, 64); err != nil {
		return msgID
	}
	return msgID[:i]
}

// errStopIteration ends eachDeadLetter early without an error.
var errStopIteration = errors.New("stop iteration")

// eachDeadLetter calls fn for every message of the stream dlq present when it starts, oldest
// first, through an ordered consumer it deletes afterwards. headersOnly leaves bodies out.
// It stops at fn's first error; errStopIteration stops it without one.
func eachDeadLetter(ctx context.Context, js jetstream.JetStream, dlq string, headersOnly bool,
	fn func(jetstream.Msg, *jetstream.MsgMetadata) error,
) error {
	stream, err := js.Stream(ctx, dlq)
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	last := info.State.LastSeq
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: headersOnly})
	if err != nil {
		return fmt.Errorf("create ordered consumer: %w", err)
	}
	iter, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	defer func() {
		iter.Stop()
		// Ordered consumers are ephemeral and would expire on their own; do not leave them
		// around for every `dlq list`.
		if ci := cons.CachedInfo(); ci != nil && ci.Name != "" {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = stream.DeleteConsumer(dctx, ci.Name)
			cancel()
		}
	}()
	for {
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := iter.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return nil // nothing more arrived: the messages left were deleted meanwhile
			}
			return fmt.Errorf("read dead letters: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read dead letter metadata: %w", err)
		}
		if meta.Sequence.Stream > last {
			return nil
		}
		if err := fn(m, meta); err != nil {
			if errors.Is(err, errStopIteration) {
				return nil
			}
			return err
		}
		if meta.Sequence.Stream == last || meta.NumPending == 0 {
			return nil
		}
	}
}
