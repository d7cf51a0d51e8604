package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// consume takes messages until ctx is done. It holds what it has while the store is
// unavailable (see hold), and creates the consumer again when its message iterator dies (the
// consumer was deleted, or JetStream refused the pull).
func (w *Worker) consume(ctx context.Context, stream jetstream.Stream, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		iter, err := cons.Messages(jetstream.PullMaxMessages(2 * w.opts.BatchSize))
		if err == nil {
			w.setReady(nil)
			var stop stopReason
			stop, err = w.consumeIterator(ctx, iter)
			switch stop {
			case stopShutdown:
				return
			case stopStoreDown:
				continue
			}
		}
		w.setReady(fmt.Errorf("consumer %s unusable: %w", w.opts.Durable, err))
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
			w.setReady(fmt.Errorf("create consumer %s: %w", w.opts.Durable, err))
			w.log.Warn("create consumer", "consumer", w.opts.Durable, "err", err)
		}
	}
}

// stopReason says why consumeIterator returned.
type stopReason int

const (
	stopShutdown  stopReason = iota // ctx is done and what was fetched is handled
	stopStoreDown                   // the store was unavailable; what was held is applied now
	stopIterator                    // the iterator died; the error says why
)

// consumeIterator takes batches from iter and applies them until ctx is done, the store turns
// out unavailable, or iter dies. It is a two-stage pipeline: one goroutine takes and decodes
// the next batch while this one applies and acknowledges the current batch, so decoding costs
// no time of the store's.
//
// When the store is unavailable it stops taking (iter drains), collects every message already
// delivered to it and holds them (see hold) until the store has applied them, so an outage
// spends no delivery of any message.
//
// When ctx is done it drains iter: JetStream sends nothing more, and the batches in hand and
// the messages already buffered are still applied and acknowledged, with a context that ends
// ShutdownGrace after ctx.
func (w *Worker) consumeIterator(ctx context.Context, iter jetstream.MessagesContext) (stopReason, error) {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	take, cancelTake := context.WithCancel(work)
	defer cancelTake()
	stopDrain := context.AfterFunc(ctx, func() {
		iter.Drain()
		time.AfterFunc(w.opts.ShutdownGrace, cancelWork)
	})
	defer stopDrain()
	defer iter.Stop()

	batches := make(chan *batch, 1)
	var takeErr error // set before batches is closed
	go func() {
		defer close(batches)
		for {
			msgs, err := w.takeBatch(take, iter)
			if err != nil {
				takeErr = err
				return
			}
			batches <- w.decode(work, msgs)
		}
	}()

	var held []*batch // batches that met an unavailable store, in delivery order
	for b := range batches {
		if held != nil {
			// The store is unavailable: collect what the draining iterator still delivers.
			b.progress(w)
			held = append(held, b)
			continue
		}
		if w.apply(work, ctx.Err() != nil, b) {
			continue
		}
		held = []*batch{b}
		b.progress(w)
		iter.Drain()
		// The taker stops once the drained iterator is empty; should draining hang (NATS
		// unreachable too), cancelling take stops it.
		time.AfterFunc(5*time.Second, cancelTake)
	}
	if held != nil {
		if !w.hold(ctx, work, held) {
			return stopShutdown, nil
		}
		if ctx.Err() != nil {
			return stopShutdown, nil
		}
		return stopStoreDown, nil
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
