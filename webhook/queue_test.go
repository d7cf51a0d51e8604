package webhook_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/webhook"
)

// blockingPublisher is an AsyncPublisher that holds its first PublishMsgAsync call until
// release is closed, acknowledges every message it publishes at once, and records the
// event ids in the order it published them.
type blockingPublisher struct {
	t        *testing.T
	entered  chan struct{} // closed when the first call has begun
	release  chan struct{}
	mu       sync.Mutex
	calls    int
	eventIDs []string
}

func newBlockingPublisher(t *testing.T) *blockingPublisher {
	return &blockingPublisher{t: t, entered: make(chan struct{}), release: make(chan struct{})}
}

func (b *blockingPublisher) stub() asyncStub {
	return asyncStub{t: b.t, publish: func(msg *nats.Msg) (*stubFuture, error) {
		b.mu.Lock()
		b.calls++
		first := b.calls == 1
		b.eventIDs = append(b.eventIDs, msg.Header.Get(nats.MsgIdHdr))
		seq := uint64(b.calls)
		b.mu.Unlock()
		if first {
			close(b.entered)
			<-b.release
		}
		f := newStubFuture(msg)
		f.ok <- &jetstream.PubAck{Stream: "EVENTS", Sequence: seq}
		return f, nil
	}}
}

func (b *blockingPublisher) published() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.eventIDs...)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func eventBody(t *testing.T, i int) []byte {
	body := readFixture(t, "inquiry-started.json")
	return bytes.Replace(body, []byte(fixtureEventID), fmt.Appendf(nil, "evt_Queued%018d", i), 1)
}

// TestReceiverPublishesQueuedRequestsTogether: requests that arrive while a publish is under
// way wait in the queue and are then published back to back, in one batch, each answered
// 200 after its own PubAck; once the queue is empty no publishing goroutine is left.
func TestReceiverPublishesQueuedRequestsTogether(t *testing.T) {
	bp := newBlockingPublisher(t)
	rc, err := webhook.New(webhook.Options{
		Secrets: [][]byte{newSecret}, Publisher: bp.stub(), Stream: "EVENTS",
		PublishTimeout: 30 * time.Second, Registerer: prometheus.NewRegistry(),
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	const queued = 10
	codes := make([]int, queued+1)
	var wg sync.WaitGroup
	wg.Go(func() { codes[0] = serveSigned(rc, eventBody(t, 0)).Code })
	<-bp.entered // the first request's publish is under way, and held
	for i := 1; i <= queued; i++ {
		wg.Go(func() { codes[i] = serveSigned(rc, eventBody(t, i)).Code })
	}
	waitFor(t, fmt.Sprintf("%d requests are queued", queued), func() bool { return webhook.QueuedPublishes(rc) == queued })
	if ids := bp.published(); len(ids) != 1 {
		t.Fatalf("published %d messages while the first publish is held, want 1", len(ids))
	}
	close(bp.release)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: status %d, want 200", i, c)
		}
	}
	if ids := bp.published(); len(ids) != queued+1 {
		t.Fatalf("published %d messages, want %d: %v", len(ids), queued+1, ids)
	}
	batches, msgs := webhook.PublishBatches(rc)
	if batches != 2 || msgs != queued+1 {
		t.Errorf("publishing goroutines took %d messages in %d batches, want %d in 2 (the held one, then the queued ones together)", msgs, batches, queued+1)
	}
	waitFor(t, "the publishing goroutine has exited", func() bool { return !webhook.PublisherRunning(rc) })

	// The next request starts a publishing goroutine again.
	if c := serveSigned(rc, eventBody(t, queued+1)).Code; c != http.StatusOK {
		t.Fatalf("request after the queue emptied: status %d, want 200", c)
	}
}

// TestReceiverSkipsAbandonedQueuedPublish: a request that gives up (publish timeout) while
// its message is still queued is answered 503, and its message is never published.
func TestReceiverSkipsAbandonedQueuedPublish(t *testing.T) {
	bp := newBlockingPublisher(t)
	rc, err := webhook.New(webhook.Options{
		Secrets: [][]byte{newSecret}, Publisher: bp.stub(), Stream: "EVENTS",
		PublishTimeout: 200 * time.Millisecond, Registerer: prometheus.NewRegistry(),
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	var first int
	var wg sync.WaitGroup
	wg.Go(func() { first = serveSigned(rc, eventBody(t, 0)).Code })
	<-bp.entered
	if c := serveSigned(rc, eventBody(t, 1)).Code; c != http.StatusServiceUnavailable {
		t.Fatalf("queued request past the publish timeout: status %d, want 503", c)
	}
	close(bp.release)
	wg.Wait()
	if first != http.StatusServiceUnavailable {
		t.Errorf("held request: status %d, want 503 (its PubAck came after the timeout)", first)
	}
	waitFor(t, "the publishing goroutine has exited", func() bool { return !webhook.PublisherRunning(rc) })
	if ids := bp.published(); len(ids) != 1 || ids[0] != "evt_Queued000000000000000000" {
		t.Fatalf("published %v; want only the first event (the abandoned one is skipped)", ids)
	}
	// Delivered again, the abandoned event is stored.
	if c := serveSigned(rc, eventBody(t, 1)).Code; c != http.StatusOK {
		t.Fatalf("retried delivery: status %d, want 200", c)
	}
	if ids := bp.published(); len(ids) != 2 || ids[1] != "evt_Queued000000000000000001" {
		t.Fatalf("published %v after the retry", ids)
	}
}
