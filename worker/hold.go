package worker

import (
	"context"
	"time"
)

// hold keeps the messages of held, batches that met an unavailable store, until the store has
// applied them, and reports whether it did; it returns false when ctx ended first, after
// handing every message still held back to JetStream for immediate redelivery (Nak), so
// another replica can take them.
//
// Holding spends no delivery: the messages are neither nak'd nor left to time out, but kept
// with InProgress every third of AckWait, so JetStream's delivery count, which the worker's
// dead-lettering reads, moves only for failures of the event itself. Between attempts it waits
// the worker's pause backoff (RetryDelay doubling to MaxRetryDelay), then probes the store
// (Ping, a real write, when the Applier has it) and applies the held batches again, oldest
// first. While it holds, resumer_worker_store_unavailable is 1 and
// resumer_worker_held_messages counts the messages.
func (w *Worker) hold(ctx, work context.Context, held []*batch) bool {
	count := func() int {
		n := 0
		for _, b := range held {
			n += len(b.deliveries)
		}
		return n
	}
	w.metrics.storeUnavailable.Set(1)
	w.metrics.held.Set(float64(count()))
	defer func() {
		w.metrics.storeUnavailable.Set(0)
		w.metrics.held.Set(0)
	}()
	keepAlive := max(w.opts.AckWait/3, 10*time.Millisecond)
	for len(held) > 0 {
		if !w.waitHolding(ctx, w.pause.NextBackOff(), keepAlive, held) {
			w.log.Warn("stopping while the state store is unavailable, returning held messages", "messages", count())
			for _, b := range held {
				b.nakAll(w, 0, true)
			}
			return false
		}
		if p, ok := w.opts.Store.(pinger); ok {
			pctx, cancel := context.WithTimeout(work, 5*time.Second)
			err := p.Ping(pctx)
			cancel()
			if err != nil {
				w.log.Debug("state store still unavailable", "held", count(), "err", err)
				continue
			}
		}
		for len(held) > 0 && w.apply(work, false, held[0]) {
			held = held[1:]
		}
		w.metrics.held.Set(float64(count()))
	}
	return true
}

// waitHolding waits d, telling JetStream every keepAlive that the held messages are still
// being worked on. It reports whether ctx is still live.
func (w *Worker) waitHolding(ctx context.Context, d, keepAlive time.Duration, held []*batch) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-tick.C:
			for _, b := range held {
				b.progress(w)
			}
		}
	}
}

// progress tells JetStream that every message of b is still being worked on, which restarts
// its AckWait without counting a delivery.
func (b *batch) progress(w *Worker) {
	for _, d := range b.deliveries {
		if err := d.msg.InProgress(); err != nil {
			w.log.Debug("mark message in progress", "seq", d.meta.Sequence.Stream, "err", err)
		}
	}
}
