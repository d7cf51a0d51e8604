package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
	"github.com/resumer/resumer/worker"
)

// ApplyOptions size the apply scenario.
type ApplyOptions struct {
	// Events is the number of events (two per inquiry) in the pre-filled stream.
	Events int
	// BatchSize is the worker's batch and the baseline's pipeline length.
	BatchSize int
	// Workers is the number of workers in the process, and of baseline pipelines in flight.
	Workers int
	// Rounds of baseline and worker phases, alternating; the ratio is of the medians.
	Rounds int
	// Timeout bounds each phase.
	Timeout time.Duration
}

// countingApplier passes batches to the store and counts the events it applied; it closes
// done when target distinct events have been applied.
type countingApplier struct {
	next     worker.Applier
	target   int
	mu       sync.Mutex
	seen     map[string]struct{}
	calls    atomic.Int64
	events   atomic.Int64
	failed   atomic.Int64
	outcomes map[state.Outcome]int
	done     chan struct{}
	doneAt   time.Time
}

func newCountingApplier(next worker.Applier, target int) *countingApplier {
	return &countingApplier{next: next, target: target, seen: make(map[string]struct{}, target),
		outcomes: map[state.Outcome]int{}, done: make(chan struct{})}
}

func (c *countingApplier) ApplyBatch(ctx context.Context, events []*persona.Event) ([]state.Result, error) {
	results, err := c.next.ApplyBatch(ctx, events)
	c.calls.Add(1)
	if err != nil {
		return results, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range results {
		if r.Err != nil {
			c.failed.Add(1)
			continue
		}
		c.events.Add(1)
		c.outcomes[r.Outcome]++
		c.seen[events[i].ID] = struct{}{}
	}
	if len(c.seen) >= c.target && c.doneAt.IsZero() {
		c.doneAt = time.Now()
		close(c.done)
	}
	return results, nil
}

// Ping lets the worker check the store after a whole-batch failure, as it does with
// *state.Store.
func (c *countingApplier) Ping(ctx context.Context) error {
	if p, ok := c.next.(interface{ Ping(context.Context) error }); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingApplier) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// newStore returns a state store under prefix with the service's defaults.
func (e *env) newStore(prefix string, now func() time.Time) (*state.Store, error) {
	return state.New(e.rdb, state.Config{Prefix: prefix, Now: now})
}

// rawApply sends the apply script for every event straight to Redis: pipelines of batch
// EVALSHAs, pipelines in flight at once, the KEYS and ARGV built beforehand. It returns the
// time the sends took.
func rawApply(ctx context.Context, rdb redis.UniversalClient, store *state.Store, events []*persona.Event, batch, pipelines int) (time.Duration, error) {
	type call struct {
		keys []string
		args []any
	}
	calls := make([]call, len(events))
	var script *redis.Script
	for i, ev := range events {
		s, keys, args, err := store.RawApply(ev)
		if err != nil {
			return 0, err
		}
		script, calls[i] = s, call{keys, args}
	}
	if err := script.Load(ctx, rdb).Err(); err != nil {
		return 0, fmt.Errorf("load apply script: %w", err)
	}
	return inChunks(ctx, len(calls), batch, pipelines, func(lo, hi int) error {
		pipe := rdb.Pipeline()
		cmds := make([]*redis.Cmd, 0, hi-lo)
		for _, c := range calls[lo:hi] {
			cmds = append(cmds, script.EvalSha(ctx, pipe, c.keys, c.args...))
		}
		_, err := pipe.Exec(ctx)
		for _, c := range cmds {
			if err == nil {
				err = c.Err()
			}
		}
		return err
	})
}

// inChunks splits [0, n) into chunks of up to size and hands them to do from workers
// goroutines, each taking the next chunk when done with its last, until all are done, one
// fails or ctx ends. It returns the time taken and the first error.
func inChunks(ctx context.Context, n, size, workers int, do func(lo, hi int) error) (time.Duration, error) {
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				lo := int(next.Add(int64(size)) - int64(size))
				if lo >= n {
					return
				}
				if err := do(lo, min(lo+size, n)); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return time.Since(start), firstErr
}

// prefill publishes every event's body to stream, as the receiver would, and waits for all
// the PubAcks. A window stays below the client's limit of pending async publishes (4,000 by
// default), past which a publish waits only 200 ms for PubAcks and then fails: on a loaded
// machine it did ("stalled with too many outstanding async published messages").
func prefill(ctx context.Context, js jetstream.JetStream, stream string, events []generatedEvent) error {
	const window = 2048
	for lo := 0; lo < len(events); lo += window {
		for i := lo; i < min(lo+window, len(events)); i++ {
			if _, err := js.PublishMsgAsync(events[i].message(time.Now()), jetstream.WithExpectStream(stream)); err != nil {
				return fmt.Errorf("prefill stream %s: %w", stream, err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Minute):
			return fmt.Errorf("prefill stream %s: no PubAcks within a minute", stream)
		}
	}
	return nil
}

// workerSet is n worker.Workers of one process applying a stream to a store through a
// countingApplier.
type workerSet struct {
	e       *env
	applier *countingApplier
	started time.Time
	dlq     string // the dead-letter stream the workers share
	stop    context.CancelFunc
	wg      sync.WaitGroup
	errs    chan error
	conns   []*nats.Conn
}

// startWorkers starts n workers (each with its own NATS connection, as separate replicas
// would have) on stream, applying to store; the set is done when target distinct events were
// applied.
func (e *env) startWorkers(ctx context.Context, stream, durable string, n, batch int, store worker.Applier, target int) (*workerSet, error) {
	wctx, stop := context.WithCancel(ctx)
	ws := &workerSet{e: e, applier: newCountingApplier(store, target), dlq: e.streamName(durable + "_dlq"),
		stop: stop, errs: make(chan error, n)}
	reg := prometheus.NewRegistry()
	for i := range n {
		nc, js, err := connectNATS(e.natsURL, "resumer-bench-worker")
		if err != nil {
			ws.close()
			return nil, err
		}
		ws.conns = append(ws.conns, nc)
		w, err := worker.New(worker.Options{
			JetStream:  js,
			Stream:     stream,
			Durable:    durable,
			DLQStream:  ws.dlq,
			BatchSize:  batch,
			Store:      ws.applier,
			Registerer: reg, // workers of one process share their collectors
		})
		if err != nil {
			ws.close()
			return nil, err
		}
		ws.wg.Go(func() {
			if err := w.Run(wctx); err != nil {
				ws.errs <- fmt.Errorf("worker %d: %w", i, err)
			}
		})
	}
	ws.started = time.Now()
	return ws, nil
}

// wait waits until the target was applied, a worker failed, timeout passed or ctx ended.
func (ws *workerSet) wait(ctx context.Context, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-ws.applier.done:
		return nil
	case err := <-ws.errs:
		return err
	case <-timer.C:
		return fmt.Errorf("workers applied %d of %d events within %s", ws.applier.distinct(), ws.applier.target, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dlqMessages counts the messages the workers dead-lettered.
func (ws *workerSet) dlqMessages(ctx context.Context) uint64 {
	s, err := ws.e.js.Stream(ctx, ws.dlq)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// close stops the workers, waits for them and deletes the dead-letter stream.
func (ws *workerSet) close() {
	ws.stop()
	ws.wg.Wait()
	for _, nc := range ws.conns {
		nc.Close()
	}
	ws.e.deleteStream(ws.dlq)
}

// runApply measures events per second from a pre-filled stream through the worker into
// Redis against the same apply scripts sent straight to Redis, pipelined.
func (e *env) runApply(ctx context.Context, o ApplyOptions) (*Table, error) {
	t := newTable("apply", "events from a pre-filled stream through the worker into Redis vs. the same Lua applies pipelined",
		"phase", "round", "events", "time", "rate", "batches", "events/batch")
	inquiries := (o.Events + 1) / 2
	e.log("apply: generating %d events", 2*inquiries)
	events := corpus(e.seed^0xA991, inquiries, time.Now(), true)
	parsed := make([]*persona.Event, len(events))
	for i := range events {
		ev, err := persona.ParseEvent(events[i].Body)
		if err != nil {
			return t, fmt.Errorf("apply: generated body does not parse: %w", err)
		}
		parsed[i] = ev
	}
	t.note("%d events (inquiry.created then inquiry.started for %d inquiries); batch %d; %d worker(s) and as many baseline pipelines in flight; fresh key prefix per phase",
		len(events), inquiries, o.BatchSize, o.Workers)
	var base, work []float64
	for round := 1; round <= o.Rounds; round++ {
		// Baseline: the same applies, built beforehand, pipelined straight to Redis.
		e.log("apply: round %d, baseline", round)
		prefix := e.redisPrefix("apply-raw-" + strconv.Itoa(round))
		store, err := e.newStore(prefix, nil)
		if err != nil {
			return t, err
		}
		rctx, cancel := context.WithTimeout(ctx, o.Timeout)
		took, err := rawApply(rctx, e.rdb, store, parsed, o.BatchSize, o.Workers)
		cancel()
		e.cleanPrefix(prefix)
		if err != nil {
			return t, fmt.Errorf("apply baseline: %w", err)
		}
		r := float64(len(parsed)) / took.Seconds()
		base = append(base, r)
		t.row("baseline", itoa(round), itoa(len(parsed)), secs(took), rate(r),
			itoa((len(parsed)+o.BatchSize-1)/o.BatchSize), itoa(o.BatchSize))

		// Worker: pre-fill a fresh stream (not timed), then time the workers draining it.
		e.log("apply: round %d, pre-filling the stream", round)
		stream := e.streamName("apply_" + strconv.Itoa(round))
		if err := e.ensureStream(ctx, stream); err != nil {
			return t, err
		}
		if err := prefill(ctx, e.js, stream, events); err != nil {
			e.deleteStream(stream)
			return t, err
		}
		e.log("apply: round %d, worker", round)
		prefix = e.redisPrefix("apply-worker-" + strconv.Itoa(round))
		store, err = e.newStore(prefix, nil)
		if err != nil {
			e.deleteStream(stream)
			return t, err
		}
		ws, err := e.startWorkers(ctx, stream, "bench", o.Workers, o.BatchSize, store, len(events))
		if err == nil {
			err = ws.wait(ctx, o.Timeout)
			ws.close()
		}
		e.deleteStream(stream)
		e.cleanPrefix(prefix)
		if err != nil {
			return t, fmt.Errorf("apply worker: %w", err)
		}
		if f := ws.applier.failed.Load(); f > 0 {
			t.note("round %d: %d events failed to apply and were retried", round, f)
		}
		took = ws.applier.doneAt.Sub(ws.started)
		r = float64(len(events)) / took.Seconds()
		work = append(work, r)
		calls := ws.applier.calls.Load()
		t.row("worker", itoa(round), itoa(len(events)), secs(took), rate(r), strconv.FormatInt(calls, 10),
			strconv.FormatFloat(float64(ws.applier.events.Load())/float64(max(calls, 1)), 'f', 0, 64))
	}
	mb, mw := median(base), median(work)
	rt := mw / mb
	t.Metrics["baseline_rate"] = mb
	t.Metrics["worker_rate"] = mw
	t.Metrics["ratio"] = rt
	t.target("apply throughput", "≥ 0.30 × raw pipelined applies", rt, rt >= 0.3,
		fmt.Sprintf("%.2f × (worker %s vs raw %s, medians of %d rounds)", rt, rate(mw), rate(mb), o.Rounds))
	t.note("worker time runs from its start (consumer set-up included) to the apply that completed the stream; baseline time is the pipelined EVALSHAs only")
	return t, nil
}
