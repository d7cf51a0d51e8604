package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/resumer/resumer/internal/eventstream"
)

// Worker consumes the events stream and applies the events to the state store. Create it with
// New and start it with Run; any number of Workers, in one process or many, share the durable
// consumer and split the messages between them.
type Worker struct {
	opts    Options
	js      jetstream.JetStream
	log     *slog.Logger
	metrics *metrics
	inq     *InquiryMetrics // nil without Options.Counts
	running atomic.Bool

	// pause paces the waits after the store failed as a whole; only the goroutine running
	// consume touches it.
	pause *backoff.ExponentialBackOff
	// storeDownSince is when the current store outage began (zero: no outage).
	storeDownSince time.Time
}

// New checks opts, fills in defaults and registers the worker's metrics. It does no I/O and
// fails only on a bad option or a metrics registration conflict.
func New(opts Options) (*Worker, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	log := o.Logger.With("component", "worker")
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("create worker: %w", err)
	}
	w := &Worker{opts: o, js: o.JetStream, log: log, metrics: m}
	if o.Counts != nil {
		if w.inq, err = NewInquiryMetrics(o.Counts, o.Registerer, log); err != nil {
			return nil, fmt.Errorf("create worker: %w", err)
		}
	}
	w.pause = backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(o.RetryDelay),
		backoff.WithMaxInterval(o.MaxRetryDelay),
		backoff.WithMaxElapsedTime(0),
	)
	return w, nil
}

// Run consumes until ctx is done, then stops taking messages, finishes the batch in hand and
// the messages already fetched (within Options.ShutdownGrace), and returns nil.
//
// At start it looks up the events stream, creates or updates the dead-letter stream and the
// durable consumer, and subscribes to the max-deliveries advisory; it returns an error when
// any of that fails (unless ctx was cancelled meanwhile). After that, failures are handled
// and logged, never returned: an unreachable store pauses the worker, a lost consumer is
// created again.
//
// A Worker runs once at a time: calling Run while it runs returns an error. For more
// throughput in one process, create more Workers.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("run worker: already running")
	}
	defer w.running.Store(false)
	stream, cons, err := w.setUp(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	advisories := make(chan *nats.Msg, 256)
	subject := maxDeliveriesSubject(w.opts.Stream, w.opts.Durable)
	sub, err := w.js.Conn().ChanSubscribe(subject, advisories)
	if err != nil {
		return fmt.Errorf("run worker: subscribe to %s: %w", subject, err)
	}
	w.log.Info("worker started", "stream", w.opts.Stream, "consumer", w.opts.Durable,
		"dlq", w.opts.DLQStream, "batch_size", w.opts.BatchSize)

	bgCtx, stopBackground := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.watchAdvisories(bgCtx, stream, advisories) })
	wg.Go(func() { w.reportPending(bgCtx, cons) })
	if w.inq != nil {
		wg.Go(func() { w.inq.Run(bgCtx, w.opts.StatsInterval) })
	}

	w.consume(ctx, stream, cons)

	if err := sub.Unsubscribe(); err != nil {
		w.log.Debug("unsubscribe from advisories", "err", err)
	}
	stopBackground()
	wg.Wait()
	// Acks are published asynchronously: make sure the server has them before returning.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.opts.ShutdownGrace)
	defer cancel()
	if err := w.js.Conn().FlushWithContext(flushCtx); err != nil {
		w.log.Warn("flush acknowledgements", "err", err)
	}
	w.log.Info("worker stopped")
	return nil
}

// setUp finds the events stream, ensures the dead-letter stream (with the events stream's
// replica count) and creates or updates the durable consumer.
func (w *Worker) setUp(ctx context.Context) (jetstream.Stream, jetstream.Consumer, error) {
	stream, err := w.js.Stream(ctx, w.opts.Stream)
	if err != nil {
		return nil, nil, fmt.Errorf("run worker: find stream %s (eventstream.Ensure creates it): %w", w.opts.Stream, err)
	}
	replicas := 1
	if info := stream.CachedInfo(); info != nil && info.Config.Replicas > 0 {
		replicas = info.Config.Replicas
	}
	if _, err := eventstream.EnsureDLQ(ctx, w.js, w.opts.DLQStream, replicas); err != nil {
		return nil, nil, fmt.Errorf("run worker: %w", err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, w.opts.consumerConfig())
	if err != nil {
		return nil, nil, fmt.Errorf("run worker: create consumer %s on %s: %w", w.opts.Durable, w.opts.Stream, err)
	}
	return stream, cons, nil
}

// reportPending refreshes resumer_worker_consumer_pending every StatsInterval until ctx is
// done. Errors leave the gauge as it was.
func (w *Worker) reportPending(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(w.opts.StatsInterval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := cons.Info(ictx)
		cancel()
		if err == nil {
			w.metrics.pending.Set(float64(info.NumPending))
		} else if !errors.Is(err, context.Canceled) {
			w.log.Debug("read consumer info", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sleep waits d or until ctx is done; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
