package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/webhook"
)

// TestReceiverPublishModes runs the guarantees against a real JetStream in both publish
// modes: asynchronous (PubAck futures, the default with a jetstream.JetStream) and
// synchronous (Options.SyncPublish). 200 only when stored, a duplicate is 200 and stored
// once, a publish to another stream is 503 and stores nothing, and requests in flight
// together are each answered after their own PubAck.
func TestReceiverPublishModes(t *testing.T) {
	for _, syncPublish := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", syncPublish), func(t *testing.T) {
			h := newHarness(t, testenv.NATS(t), func(o *webhook.Options) { o.SyncPublish = syncPublish })
			body := readFixture(t, "inquiry-started.json")
			for i := range 2 {
				if r := h.deliver(t, body, now.Add(time.Duration(i)*time.Second)); r.status != http.StatusOK {
					t.Fatalf("delivery %d: status = %d (%q), want 200", i+1, r.status, r.body)
				}
			}
			if n := h.stored(t); n != 1 {
				t.Fatalf("stream holds %d messages after two deliveries of one event, want 1", n)
			}

			// Many requests in flight at once share the connection; each is answered 200
			// only once its own event is stored.
			const n = 40
			var wg sync.WaitGroup
			statuses := make([]int, n)
			for i := range n {
				wg.Go(func() {
					ev := bytes.Replace(body, []byte(fixtureEventID), fmt.Appendf(nil, "evt_Concurrent%014d", i), 1)
					statuses[i] = h.deliver(t, ev, now).status
				})
			}
			wg.Wait()
			for i, st := range statuses {
				if st != http.StatusOK {
					t.Errorf("concurrent request %d: status %d, want 200", i, st)
				}
			}
			if got := h.stored(t); got != 1+n {
				t.Fatalf("stream holds %d messages, want %d", got, 1+n)
			}

			other := newHarness(t, testenv.NATS(t), func(o *webhook.Options) { o.SyncPublish = syncPublish; o.Stream = "SOME_OTHER_STREAM" })
			if r := other.deliver(t, body, now); r.status != http.StatusServiceUnavailable || r.retryAfter == "" {
				t.Fatalf("publish into another stream: status = %d, Retry-After = %q; want 503", r.status, r.retryAfter)
			}
			if got := other.stored(t); got != 0 {
				t.Fatalf("the receiver's own stream holds %d messages, want 0", got)
			}
		})
	}
}

// asyncStub is a webhook.AsyncPublisher whose futures do what a test says; PublishMsg must
// not be called.
type asyncStub struct {
	t       *testing.T
	publish func(msg *nats.Msg) (*stubFuture, error)
}

func (a asyncStub) PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	a.t.Error("PublishMsg called on an AsyncPublisher")
	return nil, errors.New("unexpected synchronous publish")
}

func (a asyncStub) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f, err := a.publish(msg)
	if f == nil {
		return nil, err
	}
	return f, err
}

type stubFuture struct {
	msg *nats.Msg
	ok  chan *jetstream.PubAck
	err chan error
}

func newStubFuture(msg *nats.Msg) *stubFuture {
	return &stubFuture{msg: msg, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
}

func (f *stubFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *stubFuture) Err() <-chan error            { return f.err }
func (f *stubFuture) Msg() *nats.Msg               { return f.msg }

// TestReceiverAsyncPublisherMisbehaves: every way a PubAck future can fail is a 503 with
// Retry-After, within the publish timeout.
func TestReceiverAsyncPublisherMisbehaves(t *testing.T) {
	body := readFixture(t, "inquiry-started.json")
	tests := []struct {
		name    string
		publish func(msg *nats.Msg) (*stubFuture, error)
	}{
		{"never acknowledged", func(msg *nats.Msg) (*stubFuture, error) { return newStubFuture(msg), nil }},
		{"future fails", func(msg *nats.Msg) (*stubFuture, error) {
			f := newStubFuture(msg)
			f.err <- jetstream.ErrNoStreamResponse
			return f, nil
		}},
		{"publish refused", func(*nats.Msg) (*stubFuture, error) { return nil, jetstream.ErrTooManyStalledMsgs }},
		{"nil ack", func(msg *nats.Msg) (*stubFuture, error) {
			f := newStubFuture(msg)
			f.ok <- nil
			return f, nil
		}},
		{"ack from another stream", func(msg *nats.Msg) (*stubFuture, error) {
			f := newStubFuture(msg)
			f.ok <- &jetstream.PubAck{Stream: "OTHER", Sequence: 1}
			return f, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := webhook.New(webhook.Options{
				Secrets: [][]byte{newSecret}, Publisher: asyncStub{t: t, publish: tt.publish}, Stream: "EVENTS",
				PublishTimeout: 100 * time.Millisecond, RetryAfter: 1500 * time.Millisecond,
				Registerer: prometheus.NewRegistry(), Now: func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			w := serveSigned(rc, body)
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "2" {
				t.Errorf("status = %d, Retry-After = %q; want 503 and 2", w.Code, w.Header().Get("Retry-After"))
			}
		})
	}
}

// TestReceiverKeepsBodyOfAbandonedPublish: a publish whose PubAck did not come in time may
// still be resent by the client (JetStream retries on "no responders"), so the body it
// refers to must not be reused for the next request.
func TestReceiverKeepsBodyOfAbandonedPublish(t *testing.T) {
	body := readFixture(t, "inquiry-started.json")
	var mu sync.Mutex
	var abandoned *nats.Msg
	pub := asyncStub{t: t, publish: func(msg *nats.Msg) (*stubFuture, error) {
		f := newStubFuture(msg)
		mu.Lock()
		defer mu.Unlock()
		if abandoned == nil {
			abandoned = msg // never acknowledged
			return f, nil
		}
		f.ok <- &jetstream.PubAck{Stream: "EVENTS", Sequence: 2}
		return f, nil
	}}
	rc, err := webhook.New(webhook.Options{
		Secrets: [][]byte{newSecret}, Publisher: pub, Stream: "EVENTS",
		PublishTimeout: 50 * time.Millisecond, Registerer: prometheus.NewRegistry(),
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	if w := serveSigned(rc, body); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("first request: status %d, want 503", w.Code)
	}
	for i := range 20 {
		other := bytes.Replace(body, []byte(fixtureEventID), fmt.Appendf(nil, "evt_Next%020d", i), 1)
		other = bytes.Replace(other, []byte(`"inquiry.started"`), []byte(`"inquiry.completed"`), 1)
		if w := serveSigned(rc, other); w.Code != http.StatusOK {
			t.Fatalf("request %d: status %d, want 200", i, w.Code)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(abandoned.Data, body) {
		t.Fatal("the body of the abandoned publish was overwritten by a later request")
	}
}

// serveSigned serves body signed with newSecret at now through rc and returns the answer.
func serveSigned(rc *webhook.Receiver, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, newSecret, now))
	w := httptest.NewRecorder()
	rc.ServeHTTP(w, req)
	return w
}

// TestReceiverSubjectPrefix: with a deployment's own prefix, events are published under it
// and land in that deployment's stream, beside another deployment's in the same account.
func TestReceiverSubjectPrefix(t *testing.T) {
	s := testenv.NATS(t)
	production := newHarness(t, s, nil)
	staging, err := eventstream.NewSubjects("staging.persona.events")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, s, staging, nil)
	body := readFixture(t, "inquiry-started.json")
	if r := h.deliver(t, body, now); r.status != http.StatusOK {
		t.Fatalf("status = %d (%q), want 200", r.status, r.body)
	}
	if n := h.stored(t); n != 1 {
		t.Fatalf("staging stream holds %d messages, want 1", n)
	}
	if n := production.stored(t); n != 0 {
		t.Fatalf("production stream holds %d messages, want 0", n)
	}
	msg := h.message(t, 1)
	if msg.Subject != "staging.persona.events.inquiry.started" {
		t.Errorf("subject = %q, want staging.persona.events.inquiry.started", msg.Subject)
	}
}
