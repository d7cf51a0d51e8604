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

	// notReady is why the worker is not consuming (nil while it is); see Ready.
	notReady atomic.Pointer[error]
}

// errNotStarted is Ready's answer before Run has created the consumer.
var errNotStarted = errors.New("worker not consuming yet")

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
	w.setReady(errNotStarted)
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
// durable consumer. When any of that fails (the stream is missing, JetStream is unreachable,
// the server refuses the consumer's configuration), it logs the server's reason at warning
// level, reports it through Ready and tries again with backoff until ctx is done. After that,
// failures are handled and logged, never returned: an unavailable store makes the worker hold
// its messages, a lost consumer is created again.
//
// An unavailable store (a whole-batch failure: Redis unreachable, or refusing writes with
// OOM, READONLY, LOADING, MASTERDOWN, CLUSTERDOWN, TRYAGAIN) never spends a delivery: the
// worker stops taking messages and keeps those it has with InProgress until a write probe
// succeeds, then applies them. Only a failure of one event counts against it: at its
// MaxDeliver-th delivery it is dead-lettered with ReasonMaxDeliveries.
//
// A Worker runs once at a time: calling Run while it runs returns an error. For more
// throughput in one process, create more Workers.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("run worker: already running")
	}
	defer w.running.Store(false)
	defer w.setReady(errNotStarted)
	stream, cons, ok := w.setUpUntilDone(ctx)
	if !ok {
		return nil
	}
	w.log.Info("worker started", "stream", w.opts.Stream, "consumer", w.opts.Durable,
		"dlq", w.opts.DLQStream, "batch_size", w.opts.BatchSize, "max_deliver", w.opts.MaxDeliver)

	bgCtx, stopBackground := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.reportPending(bgCtx, stream, cons) })
	if w.inq != nil {
		wg.Go(func() { w.inq.Run(bgCtx, w.opts.StatsInterval) })
	}

	w.consume(ctx, stream, cons)

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

// Ready reports whether the worker consumes: nil while it does, else an error saying why not
// (Run not started or returned, the server's reason for refusing the consumer, a consumer
// being created again). It is meant for a readiness probe.
func (w *Worker) Ready() error {
	if err := w.notReady.Load(); err != nil {
		return *err
	}
	return nil
}

// setReady records why the worker does not consume (nil: it does).
func (w *Worker) setReady(err error) {
	if err == nil {
		w.notReady.Store(nil)
		return
	}
	w.notReady.Store(&err)
}

// setUpUntilDone runs setUp until it succeeds or ctx is done (then ok is false), logging and
// recording (for Ready) every failure.
func (w *Worker) setUpUntilDone(ctx context.Context) (jetstream.Stream, jetstream.Consumer, bool) {
	for {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		stream, cons, err := w.setUp(sctx)
		cancel()
		if err == nil {
			w.pause.Reset()
			return stream, cons, true
		}
		if ctx.Err() != nil {
			return nil, nil, false
		}
		delay := w.pause.NextBackOff()
		w.setReady(err)
		w.log.Warn("worker cannot consume, retrying", "stream", w.opts.Stream, "consumer", w.opts.Durable,
			"retry_in", delay, "err", err)
		if !sleep(ctx, delay) {
			return nil, nil, false
		}
	}
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

// reportPending refreshes resumer_worker_consumer_pending and
// resumer_worker_oldest_unapplied_age_seconds every StatsInterval until ctx is done. Errors
// leave the gauges as they were.
func (w *Worker) reportPending(ctx context.Context, stream jetstream.Stream, cons jetstream.Consumer) {
	t := time.NewTicker(w.opts.StatsInterval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := cons.Info(ictx)
		if err == nil {
			w.metrics.pending.Set(float64(info.NumPending))
			var age time.Duration
			if age, err = w.oldestUnapplied(ictx, stream, info); err == nil {
				w.metrics.oldestUnapplied.Set(age.Seconds())
			}
		}
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			w.log.Debug("read consumer info", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// oldestUnapplied is the age of the oldest message of the events stream that the consumer has
// neither acknowledged nor terminated: the first message after its ack floor (0 when there is
// none).
func (w *Worker) oldestUnapplied(ctx context.Context, stream jetstream.Stream, info *jetstream.ConsumerInfo) (time.Duration, error) {
	if info.NumPending == 0 && info.NumAckPending == 0 {
		return 0, nil
	}
	m, err := stream.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(w.opts.Subjects.Filter()))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read oldest unapplied message: %w", err)
	}
	return max(w.opts.Now().Sub(m.Time), 0), nil
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
