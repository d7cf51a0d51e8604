package webhook

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errPublishTimeout is the error of a publish whose PubAck did not come within the publish
// timeout.
var errPublishTimeout = errors.New("no PubAck within the publish timeout")

// The asynchronous path: each request queues its message and waits for its own PubAck
// future; one goroutine at a time (drainPublishes) takes everything queued and publishes
// it back to back. nats.go wakes its flusher at the first publish into an empty buffer,
// and the Go scheduler runs a woken goroutine next: a request that published by itself
// would have its message written, alone, before the next request could add its own. Queued,
// the requests in flight share one write to NATS, one read of it by the server and one
// write of their PubAcks back. On this project's 2-core bench (docs/BENCHMARKS.md, issue 17,
// "Second pass") CPU per webhook (receiver + NATS) fell from 1.55 to 1.44 × the raw
// publish's over 56 alternated rounds of `resumer bench --latency-windows 0 --rounds 7
// ingest`, and the receiver role's own CPU in a --cpuprofile from 55 to 44 µs.

// queuedPublish is one request's message waiting for the publishing goroutine.
type queuedPublish struct {
	msg *nats.Msg
	// abandoned is set by the request when it stopped waiting (timeout, client gone) before
	// its message was published; the publishing goroutine then skips it.
	abandoned atomic.Bool
	// started receives what PublishMsgAsync returned; buffered, so that the publishing
	// goroutine never waits for the request.
	started chan startedPublish
}

// startedPublish is the outcome of PublishMsgAsync for one queued message.
type startedPublish struct {
	future jetstream.PubAckFuture
	err    error
}

// publishQueue holds the messages of requests in flight until a publishing goroutine takes
// them. At most one such goroutine runs at a time; it exits when the queue is empty, so a
// Receiver owns no goroutine while it is idle and needs no Close.
type publishQueue struct {
	mu      sync.Mutex
	pending []*queuedPublish
	running bool // a publishing goroutine is on its way or running
	// batches and published count what the publishing goroutines did (tests read them).
	batches, published atomic.Int64
}

// add queues p and reports whether the caller must start a publishing goroutine.
func (q *publishQueue) add(p *queuedPublish) (start bool) {
	q.mu.Lock()
	q.pending = append(q.pending, p)
	start = !q.running
	q.running = true
	q.mu.Unlock()
	return start
}

// take returns everything queued and gives the queue done's storage for what comes next;
// when nothing is queued it returns nil and records that no publishing goroutine runs.
func (q *publishQueue) take(done []*queuedPublish) []*queuedPublish {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		q.running = false
		return nil
	}
	batch := q.pending
	q.pending = done[:0]
	return batch
}

// drainPublishes publishes what is queued until the queue is empty. It first yields, so
// that the requests the scheduler already has ready to run reach the queue and go out in
// the same write as the one that started it.
func (rc *Receiver) drainPublishes() {
	runtime.Gosched()
	var done []*queuedPublish
	for {
		batch := rc.queue.take(done)
		if batch == nil {
			return
		}
		rc.queue.batches.Add(1)
		rc.queue.published.Add(int64(len(batch)))
		for i, p := range batch {
			if p.abandoned.Load() {
				p.started <- startedPublish{err: errPublishTimeout}
			} else {
				f, err := rc.async.PublishMsgAsync(p.msg, jetstream.WithExpectStream(rc.stream))
				p.started <- startedPublish{future: f, err: err}
			}
			batch[i] = nil
		}
		done = batch
	}
}

// publishAsync queues msg for the publishing goroutine and waits for its PubAck future, at
// most publishTimeout in all and not past ctx. A message still queued when the wait ends is
// not published; one already published may still be stored (a later delivery of the event
// is then a duplicate).
func (rc *Receiver) publishAsync(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	timer := time.NewTimer(rc.publishTimeout)
	defer timer.Stop()
	p := &queuedPublish{msg: msg, started: make(chan startedPublish, 1)}
	if rc.queue.add(p) {
		go rc.drainPublishes()
	}
	var f jetstream.PubAckFuture
	select {
	case s := <-p.started:
		if s.err != nil {
			return nil, s.err
		}
		f = s.future
	case <-timer.C:
		p.abandoned.Store(true)
		return nil, errPublishTimeout
	case <-ctx.Done():
		p.abandoned.Store(true)
		return nil, ctx.Err()
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-timer.C:
		return nil, errPublishTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
