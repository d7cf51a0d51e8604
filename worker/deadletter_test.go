package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// dlqMsgs counts the messages in the dead-letter stream.
func (e *env) dlqMsgs(t *testing.T) uint64 {
	t.Helper()
	s, err := e.js.Stream(context.Background(), e.dlq)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func (e *env) getMsg(t *testing.T, stream string, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := e.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatalf("get %s seq %d: %v", stream, seq, err)
	}
	return m
}

func TestMalformedMessagesDeadLettered(t *testing.T) {
	e := newEnv(t)
	notJSON := []byte("this is not json")
	notEvent := []byte(`{"data":{"type":"inquiry","id":"inq_x","attributes":{"status":"pending"}}}`)
	e.publish(t, "inquiry.started", "evt_bad1", notJSON)
	e.publish(t, "inquiry.created", "evt_bad2", notEvent)
	e.publishEvent(t, testEvent{ID: "evt_ok", Name: "inquiry.created", InquiryID: "inq_ok",
		Status: persona.StatusCreated, At: testNow.Add(-time.Minute)})
	r := start(t, e.options(e.store))

	eventually(t, 10*time.Second, "two dead letters", func() bool { return e.dlqMsgs(t) == 2 })
	eventually(t, 5*time.Second, "everything settled", func() bool {
		info := e.consumerInfo(t, "")
		return info.AckFloor.Stream == 3 && info.NumAckPending == 0
	})
	if inquiry(t, e.store, "inq_ok") == nil {
		t.Error("the valid event after the poison ones was not applied")
	}

	dl := e.getMsg(t, e.dlq, 1)
	wantHeaders := map[string]string{
		eventstream.HeaderDeadReason:   ReasonMalformed,
		eventstream.HeaderDeadSubject:  "persona.events.inquiry.started",
		eventstream.HeaderDeadSequence: "1",
		eventstream.HeaderEventName:    "inquiry.started",
		HeaderDeadMsgID:                "evt_bad1",
		nats.MsgIdHdr:                  "dlq-" + e.stream + "-1",
	}
	for k, want := range wantHeaders {
		if got := dl.Header.Get(k); got != want {
			t.Errorf("dead letter header %s = %q, want %q", k, got, want)
		}
	}
	if dl.Header.Get(eventstream.HeaderReceivedAt) == "" {
		t.Error("original header Resumer-Received-At not kept")
	}
	if !bytes.Equal(dl.Data, notJSON) {
		t.Errorf("dead letter body = %q", dl.Data)
	}
	if want := eventstream.DLQSubject(e.dlq, "inquiry.started"); dl.Subject != want {
		t.Errorf("dead letter subject = %q, want %q", dl.Subject, want)
	}
	if got := testutil.ToFloat64(r.w.metrics.deadLetters.WithLabelValues(ReasonMalformed)); got != 2 {
		t.Errorf("dead_letters_total{malformed} = %v, want 2", got)
	}

	ctx := context.Background()
	letters, err := ListDeadLetters(ctx, e.js, e.dlq, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 2 {
		t.Fatalf("ListDeadLetters = %d letters, want 2", len(letters))
	}
	l := letters[0]
	if l.Seq != 1 || l.StreamSeq != 1 || l.Reason != ReasonMalformed || l.EventID != "evt_bad1" ||
		l.EventName != "inquiry.started" || l.Subject != "persona.events.inquiry.started" ||
		l.Size != len(notJSON) || time.Since(l.Time) > time.Minute {
		t.Errorf("letter 1 = %+v", l)
	}
	if letters[1].Seq != 2 || letters[1].EventID != "evt_bad2" || letters[1].Size != len(notEvent) {
		t.Errorf("letter 2 = %+v", letters[1])
	}
	if one, err := ListDeadLetters(ctx, e.js, e.dlq, 1); err != nil || len(one) != 1 || one[0].Seq != 1 {
		t.Errorf("ListDeadLetters(limit 1) = %+v, %v", one, err)
	}

	// Replay one: it goes back to the events stream as it came, the worker dead-letters it
	// again (it is still not an event), and the replayed copy is gone from the DLQ.
	n, err := ReplayDeadLetters(ctx, e.js, e.dlq, []uint64{1})
	if err != nil || n != 1 {
		t.Fatalf("ReplayDeadLetters([1]) = %d, %v", n, err)
	}
	back := e.getMsg(t, e.stream, 4)
	if back.Subject != "persona.events.inquiry.started" || !bytes.Equal(back.Data, notJSON) ||
		back.Header.Get(nats.MsgIdHdr) != "evt_bad1-replay-1" ||
		back.Header.Get(eventstream.HeaderEventName) != "inquiry.started" ||
		back.Header.Get(eventstream.HeaderDeadReason) != "" || back.Header.Get(HeaderDeadMsgID) != "" {
		t.Errorf("replayed message: subject %q headers %v body %q", back.Subject, back.Header, back.Data)
	}
	eventually(t, 10*time.Second, "replayed poison dead-lettered again", func() bool { return e.dlqMsgs(t) == 2 })
	again := e.getMsg(t, e.dlq, 3)
	if again.Header.Get(eventstream.HeaderDeadSequence) != "4" || again.Header.Get(HeaderDeadMsgID) != "evt_bad1-replay-1" {
		t.Errorf("second dead letter headers %v", again.Header)
	}
	if n, err := ReplayDeadLetters(ctx, e.js, e.dlq, []uint64{1}); !errors.Is(err, jetstream.ErrMsgNotFound) || n != 0 {
		t.Errorf("replaying a replayed dead letter = %d, %v; want ErrMsgNotFound", n, err)
	}

	// Replay all: the two present when the call starts.
	n, err = ReplayDeadLetters(ctx, e.js, e.dlq, nil)
	if err != nil || n != 2 {
		t.Fatalf("ReplayDeadLetters(nil) = %d, %v", n, err)
	}
	eventually(t, 10*time.Second, "both dead-lettered again", func() bool {
		letters, err := ListDeadLetters(ctx, e.js, e.dlq, 0)
		return err == nil && len(letters) == 2 && letters[0].Seq == 4 && letters[1].Seq == 5
	})
	// A replayed replay keeps the event id in its list entry and message id.
	letters, err = ListDeadLetters(ctx, e.js, e.dlq, 0)
	if err != nil || letters[0].EventID != "evt_bad2" || letters[1].EventID != "evt_bad1" {
		t.Errorf("letters after second replay = %+v, %v", letters, err)
	}
	if id := e.getMsg(t, e.dlq, 5).Header.Get(HeaderDeadMsgID); id != "evt_bad1-replay-3" {
		t.Errorf("message id of a replayed replay = %q, want evt_bad1-replay-3", id)
	}
}

// TestDeadLetterPublishFailureNaks removes the dead-letter stream under a running worker: the
// poison message is not terminated, and lands in the DLQ once the stream is back.
func TestDeadLetterPublishFailureNaks(t *testing.T) {
	e := newEnv(t)
	r := start(t, e.options(e.store))
	eventually(t, 10*time.Second, "DLQ created by Run", func() bool {
		_, err := e.js.Stream(context.Background(), e.dlq)
		return err == nil
	})
	if err := e.js.DeleteStream(context.Background(), e.dlq); err != nil {
		t.Fatal(err)
	}
	e.publish(t, "inquiry.started", "evt_poison", []byte("{"))
	eventually(t, 10*time.Second, "dead-letter attempt", func() bool {
		return testutil.ToFloat64(r.w.metrics.events.WithLabelValues("inquiry.started", resultFailed)) >= 1
	})
	if info := e.consumerInfo(t, ""); info.AckFloor.Stream != 0 {
		t.Fatalf("poison message settled (ack floor %d) although its dead letter was not stored", info.AckFloor.Stream)
	}
	if _, err := eventstream.EnsureDLQ(context.Background(), e.js, e.dlq, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "dead letter stored on a later delivery", func() bool { return e.dlqMsgs(t) == 1 })
	eventually(t, 5*time.Second, "poison message terminated", func() bool {
		info := e.consumerInfo(t, "")
		return info.AckFloor.Stream == 1 && info.NumAckPending == 0
	})
}

// TestMaxDeliveriesDeadLettered makes every event fail on its own (a script error for that
// event): at its MaxDeliver-th delivery the worker holding it dead-letters it, exactly once
// although two replicas share the consumer, and once the cause is fixed a replay applies it.
func TestMaxDeliveriesDeadLettered(t *testing.T) {
	e := newEnv(t)
	var workers []*running
	for range 2 {
		opts := e.options(&countingApplier{next: e.store, failEach: true})
		opts.MaxDeliver = 2
		workers = append(workers, start(t, opts))
	}
	ev := testEvent{ID: "evt_md1", Name: "inquiry.started", InquiryID: "inq_md", Status: persona.StatusPending, At: testNow.Add(-time.Minute)}
	e.publishEvent(t, ev)

	eventually(t, 15*time.Second, "dead letter after max deliveries", func() bool { return e.dlqMsgs(t) == 1 })
	eventually(t, 5*time.Second, "terminated at its second delivery", func() bool {
		info := e.consumerInfo(t, "")
		return info.AckFloor.Stream == 1 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
	if n := e.dlqMsgs(t); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
	dl := e.getMsg(t, e.dlq, 1)
	if dl.Header.Get(eventstream.HeaderDeadReason) != ReasonMaxDeliveries || dl.Header.Get(HeaderDeadMsgID) != "evt_md1" ||
		dl.Header.Get(eventstream.HeaderDeadSequence) != "1" {
		t.Errorf("dead letter headers %v", dl.Header)
	}
	counted := 0.0
	for _, r := range workers {
		counted += testutil.ToFloat64(r.w.metrics.deadLetters.WithLabelValues(ReasonMaxDeliveries))
	}
	if counted != 1 {
		t.Errorf("dead_letters_total{max_deliveries} over both replicas = %v, want 1", counted)
	}
	for _, r := range workers {
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
	}
	if inquiry(t, e.store, "inq_md") != nil {
		t.Fatal("event applied although every apply failed")
	}

	// The cause is fixed: a worker with a working store applies the replayed event.
	start(t, e.options(e.store))
	n, err := ReplayDeadLetters(context.Background(), e.js, e.dlq, nil)
	if err != nil || n != 1 {
		t.Fatalf("ReplayDeadLetters = %d, %v", n, err)
	}
	eventually(t, 10*time.Second, "replayed event applied", func() bool {
		inq := inquiry(t, e.store, "inq_md")
		return inq != nil && inq.Status == persona.StatusPending
	})
	if n := e.dlqMsgs(t); n != 0 {
		t.Errorf("%d dead letters left after the replay", n)
	}
}

func TestEventID(t *testing.T) {
	for in, want := range map[string]string{
		"evt_1":                   "evt_1",
		"evt_1-replay-12":         "evt_1",
		"evt_1-replay-1-replay-3": "evt_1-replay-1",
		"evt_1-replay-x":          "evt_1-replay-x",
		"-replay-4":               "-replay-4",
		"":                        "",
	} {
		if got := eventID(in); got != want {
			t.Errorf("eventID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDeadLetterMsg(t *testing.T) {
	h := nats.Header{}
	h.Set(nats.MsgIdHdr, "evt_1")
	h.Set("Nats-Expected-Last-Sequence", "41")
	h.Set(eventstream.HeaderEventName, "inquiry.started")
	h.Add("X-Many", "a")
	h.Add("X-Many", "b")
	o := original{subject: "persona.events.inquiry.started", seq: 42, header: h, data: []byte("body")}
	m := deadLetterMsg("EVENTS", "DLQ", o, ReasonMaxDeliveries)
	if m.Subject != "resumer.dlq.dlq.inquiry.started" {
		t.Errorf("subject %q", m.Subject)
	}
	want := map[string][]string{
		nats.MsgIdHdr:                  {"dlq-EVENTS-42"},
		HeaderDeadMsgID:                {"evt_1"},
		eventstream.HeaderDeadReason:   {ReasonMaxDeliveries},
		eventstream.HeaderDeadSubject:  {"persona.events.inquiry.started"},
		eventstream.HeaderDeadSequence: {strconv.Itoa(42)},
		eventstream.HeaderEventName:    {"inquiry.started"},
		"X-Many":                       {"a", "b"},
	}
	if len(m.Header) != len(want) {
		t.Errorf("headers %v, want %v", m.Header, want)
	}
	for k, vs := range want {
		if fmt.Sprint(m.Header.Values(k)) != fmt.Sprint(vs) {
			t.Errorf("header %s = %v, want %v", k, m.Header.Values(k), vs)
		}
	}
	if string(m.Data) != "body" {
		t.Errorf("body %q", m.Data)
	}
	h.Set("X-Many", "changed")
	if m.Header.Get("X-Many") != "a" {
		t.Error("dead letter shares header slices with the original")
	}
}

func TestDeadLetterToolsOnEmptyOrMissingStream(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := ListDeadLetters(ctx, e.js, e.dlq, 0); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("ListDeadLetters on a missing stream = %v, want ErrStreamNotFound", err)
	}
	if _, err := ReplayDeadLetters(ctx, e.js, e.dlq, nil); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("ReplayDeadLetters on a missing stream = %v, want ErrStreamNotFound", err)
	}
	if _, err := eventstream.EnsureDLQ(ctx, e.js, e.dlq, 1); err != nil {
		t.Fatal(err)
	}
	letters, err := ListDeadLetters(ctx, e.js, e.dlq, 10)
	if err != nil || letters == nil || len(letters) != 0 {
		t.Errorf("ListDeadLetters on an empty stream = %#v, %v; want an empty list", letters, err)
	}
	if n, err := ReplayDeadLetters(ctx, e.js, e.dlq, nil); err != nil || n != 0 {
		t.Errorf("ReplayDeadLetters on an empty stream = %d, %v", n, err)
	}
}

// invalidApplier calls every event invalid, as the store does for one it can never apply.
type invalidApplier struct{}

func (invalidApplier) ApplyBatch(_ context.Context, events []*persona.Event) ([]state.Result, error) {
	res := make([]state.Result, len(events))
	for i := range res {
		res[i].Err = fmt.Errorf("apply event: no inquiry id: %w", state.ErrInvalidEvent)
	}
	return res, nil
}

func TestInvalidEventDeadLetteredAtOnce(t *testing.T) {
	e := newEnv(t)
	r := start(t, e.options(invalidApplier{}))
	e.publishEvent(t, testEvent{ID: "evt_inv", Name: "inquiry.started", InquiryID: "inq_inv", Status: persona.StatusPending, At: testNow})
	eventually(t, 10*time.Second, "dead letter", func() bool { return e.dlqMsgs(t) == 1 })
	if reason := e.getMsg(t, e.dlq, 1).Header.Get(eventstream.HeaderDeadReason); reason != ReasonInvalid {
		t.Errorf("reason %q, want %q", reason, ReasonInvalid)
	}
	eventually(t, 5*time.Second, "terminated on its first delivery", func() bool {
		info := e.consumerInfo(t, "")
		return info.AckFloor.Stream == 1 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
	if got := testutil.ToFloat64(r.w.metrics.deadLetters.WithLabelValues(ReasonInvalid)); got != 1 {
		t.Errorf("dead_letters_total{invalid_event} = %v", got)
	}
}
