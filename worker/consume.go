package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// consume takes messages until ctx is done. It pauses while the store is unreachable and
// creates the consumer again when its message iterator dies (the consumer was deleted, or
// JetStream refused the pull).
func (w *Worker) consume(ctx context.Context, stream jetstream.Stream, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		iter, err := cons.Messages(jetstream.PullMaxMessages(2 * w.opts.BatchSize))
		if err == nil {
			var stop stopReason
			stop, err = w.consumeIterator(ctx, iter)
			switch stop {
			case stopShutdown:
				return
			case stopStoreDown:
				w.awaitStore(ctx)
				continue
			}
		}
		w.log.Warn("consumer unusable, creating it again", "consumer", w.opts.Durable, "err", err)
		for ctx.Err() == nil {
			if !sleep(ctx, w.pause.NextBackOff()) {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			cons, err = stream.CreateOrUpdateConsumer(cctx, w.opts.consumerConfig())
			cancel()
			if err == nil {
				w.pause.Reset()
				break
			}
			w.log.Debug("create consumer", "consumer", w.opts.Durable, "err", err)
		}
	}
}

// stopReason says why consumeIterator returned.
type stopReason int

const (
	stopShutdown  stopReason = iota // ctx is done and what was fetched is handled
	stopStoreDown                   // the store failed as a whole; pause before fetching again
	stopIterator                    // the iterator died; the error says why
)

// consumeIterator takes batches from iter and applies them until ctx is done, the store fails
// as a whole, or iter dies. It is a two-stage pipeline: one goroutine takes and decodes the
// next batch while this one applies and acknowledges the current batch, so decoding costs no
// time of the store's.
//
// When ctx is done it drains iter: JetStream sends nothing more, and the batches in hand and
// the messages already buffered are still applied and acknowledged, with a context that ends
// ShutdownGrace after ctx.
func (w *Worker) consumeIterator(ctx context.Context, iter jetstream.MessagesContext) (stopReason, error) {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(ctx, func() {
		iter.Drain()
		time.AfterFunc(w.opts.ShutdownGrace, cancelWork)
	})
	defer stopDrain()
	defer iter.Stop()

	batches := make(chan *batch, 1)
	release := make(chan struct{}) // closed when the store failed: stop taking, nak the rest
	var releaseDelay time.Duration // set before release is closed
	var takeErr error              // set before batches is closed
	go func() {
		defer close(batches)
		for {
			msgs, err := w.takeBatch(work, iter)
			if err != nil {
				takeErr = err
				return
			}
			b := w.decode(work, msgs)
			select {
			case batches <- b:
			case <-release:
				b.nakAll(w, releaseDelay, false)
				return
			}
		}
	}()

	for b := range batches {
		if delay, ok := w.apply(work, ctx.Err() != nil, b); !ok {
			releaseDelay = delay
			close(release)
			iter.Drain()
			// The taker stops once the drained iterator is empty; should draining hang (NATS
			// unreachable too), cancelling work stops it.
			time.AfterFunc(5*time.Second, cancelWork)
			for b := range batches { // wait for the taker; nak what it had
				b.nakAll(w, delay, ctx.Err() != nil)
			}
			if ctx.Err() != nil {
				return stopShutdown, nil
			}
			w.releaseBuffered(iter, delay)
			return stopStoreDown, nil
		}
	}
	if ctx.Err() != nil {
		return stopShutdown, nil
	}
	return stopIterator, takeErr
}

// takeBatch takes the next batch from iter: it waits for a first message, then takes what is
// buffered or arrives within FetchWait, up to BatchSize. Under load the iterator's buffer holds
// a full batch and this returns at once.
func (w *Worker) takeBatch(ctx context.Context, iter jetstream.MessagesContext) ([]jetstream.Msg, error) {
	first, err := iter.Next(jetstream.NextContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("take next message: %w", err)
	}
	msgs := make([]jetstream.Msg, 1, w.opts.BatchSize)
	msgs[0] = first
	deadline := time.Now().Add(w.opts.FetchWait)
	for len(msgs) < w.opts.BatchSize {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		m, err := iter.Next(jetstream.NextMaxWait(wait))
		if err != nil {
			break // a timeout, or the iterator closed: the next call tells
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// releaseBuffered gives the messages iter has fetched but the worker has not taken back to
// JetStream, to be redelivered after delay, so they do not wait out their AckWait in a
// paused worker's buffer. iter must be draining.
func (w *Worker) releaseBuffered(iter jetstream.MessagesContext, delay time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for {
		m, err := iter.Next(jetstream.NextContext(ctx))
		if err != nil {
			return
		}
		if err := m.NakWithDelay(delay); err != nil {
			w.log.Debug("nak buffered message", "err", err)
		}
	}
}

// awaitStore waits after a whole-batch failure: the current backoff delay, then, for a store
// that can be pinged, until it answers. It returns early when ctx is done.
func (w *Worker) awaitStore(ctx context.Context) {
	if !sleep(ctx, w.pause.NextBackOff()) {
		return
	}
	p, ok := w.opts.Store.(pinger)
	if !ok {
		return
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := p.Ping(pctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		w.log.Debug("state store still unreachable", "err", err)
		if !sleep(ctx, w.pause.NextBackOff()) {
			return
		}
	}
}
