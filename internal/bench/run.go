package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/clustertest"
	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/redisconn"
)

// Scenarios are the scenario names, in the order Run runs them.
var Scenarios = []string{"ingest", "apply", "e2e", "sweep", "memory", "persona", "backlog"}

// OptInScenarios run only when named: "cluster" (Redis Cluster apply throughput and
// failover times, on loopback clusters it starts; needs redis-server and redis-cli).
var OptInScenarios = []string{"cluster"}

// Options configure a run. Default returns the sizes of the full run.
type Options struct {
	// RedisURL is the Redis the run writes to (under keys "bench-<run>-..."), normally
	// the local one.
	RedisURL string
	// RedisTLS completes the TLS of a rediss RedisURL (see redisconn.TLSFiles): a private CA,
	// a client certificate. The zero value: the system's roots, no client certificate. Run
	// fails at once when it names a file but RedisURL has no TLS, or a file cannot be loaded.
	RedisTLS redisconn.TLSFiles
	// NATSURL, when set, is the NATS server to use instead of an embedded one. No other
	// stream of its account may claim the events subjects (persona.events.>).
	NATSURL string
	// NATSSync is the embedded NATS server's sync_interval; the zero value is nats-server's
	// default (every two minutes). Ignored with NATSURL.
	NATSSync eventstream.Sync
	// NATSReplicas above 1 replaces the embedded server with a loopback cluster of that many
	// embedded servers (internal/clustertest), and every stream of the run gets that many
	// replicas (R3 with 3): what the Kubernetes deployment chooses, measured. It cannot be
	// combined with NATSSync (the cluster's servers keep nats-server's default). Ignored
	// with NATSURL.
	NATSReplicas int
	// Loadgen, when set, is the command line of a load generator process (resumer bench
	// _loadgen, which runs LoadgenMain): the ingest scenario's throughput phases post their
	// webhooks from it, so that the CPU time measured in this process is the receiver's and
	// NATS's only. Empty: the load generator runs in this process.
	Loadgen []string
	// Scenarios to run, from Scenarios; all when empty.
	Scenarios []string
	// Progress receives a timestamped line per step; nil for none.
	Progress io.Writer

	Ingest  IngestOptions
	Apply   ApplyOptions
	E2E     E2EOptions
	Tracked TrackedOptions
	Persona PersonaOptions
	Backlog BacklogOptions
	Cluster ClusterOptions
}

// Default returns the options of a full run: every scenario at the sizes of the issue,
// within about five minutes on two cores.
func Default() Options {
	return Options{
		RedisURL: "redis://127.0.0.1:6379/0",
		Ingest: IngestOptions{
			Concurrency: 32, Requests: 20_000, Duration: 1500 * time.Millisecond, Rounds: 5,
			Rate: 5000, LatencyDuration: 2 * time.Second, LatencyWindows: 5, MaxInFlight: 1000,
		},
		Apply: ApplyOptions{Events: 30_000, BatchSize: 256, Workers: 1, Rounds: 2, Timeout: 2 * time.Minute},
		E2E:   E2EOptions{Events: 100_000, Concurrency: 32, Workers: 1, BatchSize: 256, Timeout: 3 * time.Minute, Verify: 2000},
		Tracked: TrackedOptions{
			Levels: []int{10_000, 100_000, 1_000_000}, Due: 1000, Reps: 15, EventsPerInquiry: 1,
			Pipelines: 4, Batch: 512, MemoryTargetFrom: 100_000, MemoryUsageUpTo: 100_000,
		},
		Persona: PersonaOptions{Clients: 3, Concurrency: 4, PerMinute: 300, Window: 30 * time.Second, Windows: 1},
		Backlog: BacklogOptions{Reminders: 2000, Replicas: 3, Slots: 16, PerWindow: 400, Window: 10 * time.Second, Timeout: 3 * time.Minute},
		Cluster: ClusterOptions{Events: 20_000, Rounds: 3, Batch: 256, Appliers: 4, Failover: true, Failovers: 2},
	}
}

// Quick shrinks o for a smoke run of a few seconds per scenario: a few hundred events, tiny
// tracked levels, a persona window of a few seconds. Nothing it measures means anything.
func (o Options) Quick() Options {
	o.Ingest.Requests, o.Ingest.Duration, o.Ingest.Rounds = 300, 2*time.Second, 1
	o.Ingest.Rate, o.Ingest.LatencyDuration, o.Ingest.LatencyWindows = 200, time.Second, 1
	o.Apply.Events, o.Apply.Rounds, o.Apply.Timeout = 400, 1, 30*time.Second
	o.E2E.Events, o.E2E.Timeout, o.E2E.Verify = 400, 30*time.Second, 50
	o.Tracked.Levels, o.Tracked.Due, o.Tracked.Reps = []int{300, 1200}, 50, 3
	o.Tracked.MemoryTargetFrom, o.Tracked.MemoryUsageUpTo = 1<<62, 1200
	o.Persona.Clients, o.Persona.Concurrency = 3, 2
	o.Persona.PerMinute, o.Persona.Window, o.Persona.Windows = 600, 2*time.Second, 1
	o.Backlog.Reminders, o.Backlog.PerWindow, o.Backlog.Window = 200, 40, time.Second
	o.Cluster.Events, o.Cluster.Rounds, o.Cluster.Failovers = 400, 1, 1
	return o
}

// Run runs the chosen scenarios and returns their report. It creates its own streams and
// Redis keys, all named after a fresh run id, and deletes them before returning, whatever
// happened. A scenario that fails does not stop the others: the report holds every table
// produced, and the error joins the failures, each naming its scenario. A missed target is
// not an error; it is marked in its table.
func Run(ctx context.Context, o Options) (*Report, error) {
	want := o.Scenarios
	if len(want) == 0 {
		want = Scenarios
	}
	for _, s := range want {
		if !slices.Contains(Scenarios, s) && !slices.Contains(OptInScenarios, s) {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(append(slices.Clone(Scenarios), OptInScenarios...), ", "))
		}
	}
	start := time.Now()
	run, seed := newRunID()
	e := &env{run: run, seed: seed, log: logger(o.Progress, start), secret: []byte("wbhsec_bench_" + run)}
	rep := &Report{Run: run, StartedAt: start}

	ropts, mode, err := redisconn.Parse(o.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if err := o.RedisTLS.Apply(ropts); err != nil {
		return nil, fmt.Errorf("redis tls: %w", err)
	}
	ropts.PoolSize = max(ropts.PoolSize, 64)
	e.rdb = redis.NewUniversalClient(ropts)
	defer e.rdb.Close()
	if err := redisconn.Ping(ctx, e.rdb); err != nil {
		return nil, fmt.Errorf("redis (%s) %s: %w", mode, strings.Join(ropts.Addrs, ","), err)
	}
	defer e.cleanPrefix("bench-" + run)

	embedded := o.NATSURL == ""
	e.natsURL, e.natsSync, e.loadgen = o.NATSURL, o.NATSSync, o.Loadgen
	e.replicas = 1
	if embedded && o.NATSReplicas > 1 {
		if o.NATSSync != (eventstream.Sync{}) {
			return nil, errors.New("bench: a NATS sync_interval cannot be set for the embedded cluster (NATSReplicas > 1)")
		}
		dir, err := tempDir(run)
		if err != nil {
			return nil, err
		}
		defer removeAll(dir, e.log)
		c, err := clustertest.StartNATSCluster(ctx, filepath.Join(dir, "nats"), o.NATSReplicas)
		if err != nil {
			return nil, fmt.Errorf("start a NATS cluster of %d: %w", o.NATSReplicas, err)
		}
		defer c.Close()
		e.natsURL, e.replicas = c.URL(), o.NATSReplicas
	} else if embedded {
		dir, err := tempDir(run)
		if err != nil {
			return nil, err
		}
		defer removeAll(dir, e.log)
		ns, err := eventstream.StartEmbedded("resumer-bench", filepath.Join(dir, "nats"), o.NATSSync)
		if err != nil {
			return nil, err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
		e.natsURL = ns.ClientURL()
	}
	nc, js, err := connectNATS(e.natsURL, "resumer-bench")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	e.nc, e.js = nc, js
	rep.Machine = e.machine(ctx, embedded)
	e.log("run %s: redis (%s) %s, nats %s; scenarios %s", run, mode, strings.Join(ropts.Addrs, ","), rep.Machine.NATS, strings.Join(want, ","))

	add := func(t0 time.Time, tables ...*Table) {
		for _, t := range tables {
			if t != nil {
				t.Elapsed = time.Since(t0).Seconds()
				rep.Tables = append(rep.Tables, t)
			}
		}
	}
	var errs []error
	trackedDone := false
	for _, s := range append(slices.Clone(Scenarios), OptInScenarios...) {
		if !slices.Contains(want, s) || ctx.Err() != nil {
			continue
		}
		t0 := time.Now()
		e.log("scenario %s", s)
		var t *Table
		var err error
		switch s {
		case "ingest":
			t, err = e.runIngest(ctx, o.Ingest)
		case "apply":
			t, err = e.runApply(ctx, o.Apply)
		case "e2e":
			t, err = e.runE2E(ctx, o.E2E)
		case "sweep", "memory":
			if trackedDone {
				continue
			}
			trackedDone = true
			to := o.Tracked
			to.Sweep, to.Memory = slices.Contains(want, "sweep"), slices.Contains(want, "memory")
			var ts []*Table
			ts, err = e.runTracked(ctx, to)
			add(t0, ts...)
		case "persona":
			t, err = e.runPersona(ctx, o.Persona)
		case "backlog":
			t, err = e.runBacklog(ctx, o.Backlog)
		case "cluster":
			var ts []*Table
			ts, err = e.runCluster(ctx, o.Cluster)
			add(t0, ts...)
		}
		add(t0, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("scenario %s: %w", s, err))
			e.log("scenario %s failed: %v", s, err)
		}
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	rep.Elapsed = time.Since(start).Seconds()
	rep.finite()
	return rep, errors.Join(errs...)
}

// finite replaces figures that are not numbers (a rate of nothing, a ratio to zero) by -1,
// so the report always encodes as JSON.
func (r *Report) finite() {
	fix := func(v float64) float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return -1
		}
		return v
	}
	for _, t := range r.Tables {
		for k, v := range t.Metrics {
			t.Metrics[k] = fix(v)
		}
		for i := range t.Targets {
			t.Targets[i].Value = fix(t.Targets[i].Value)
		}
	}
}
