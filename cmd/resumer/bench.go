package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/resumer/resumer/internal/bench"
	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/redisconn"
)

// benchCommand implements `resumer bench [flags] [scenario ...]`: the load generator and
// benchmark harness of internal/bench, against an embedded (or given) NATS and the local
// Redis. docs/BENCHMARKS.md describes the scenarios and holds the latest figures.
func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "_loadgen" {
		// The load generator process the ingest scenario starts (Options.Loadgen).
		return bench.LoadgenMain(ctx, os.Stdin, stdout)
	}
	d := bench.Default()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: resumer bench [flags] [scenario ...]\n\nscenarios: %s (default: all); opt-in: %s\n\nflags:\n",
			strings.Join(bench.Scenarios, " "), strings.Join(bench.OptInScenarios, " "))
		fs.PrintDefaults()
	}
	redisURL := fs.String("redis-url", d.RedisURL, "Redis to write the run's keys to (bench-<run>-..., deleted at the end)")
	redisCA := fs.String("redis-tls-ca-file", "", "PEM file of the CA(s) that sign the --redis-url servers' certificates, trusted instead of the system's roots; needs a rediss URL")
	redisCert := fs.String("redis-tls-cert-file", "", "PEM client certificate sent to a --redis-url server that asks for one (with --redis-tls-key-file); needs a rediss URL")
	redisKey := fs.String("redis-tls-key-file", "", "PEM private key of --redis-tls-cert-file")
	natsURL := fs.String("nats-url", "", "NATS server to use instead of an embedded one (no other stream may claim persona.events.>)")
	inprocLoadgen := fs.Bool("inprocess-loadgen", false, "ingest: post the webhooks from this process instead of a load generator process of its own (its CPU is then counted against the receiver)")
	natsSync := fs.String("nats-sync", "", "embedded NATS sync_interval: always or a duration (default: nats-server's, 2m)")
	natsReplicas := fs.Int("nats-replicas", 1, "embedded NATS: a loopback cluster of this many servers, streams with as many replicas (3: R3, what the Kubernetes deployment runs)")
	clusterURL := fs.String("cluster-url", "", "cluster: the Redis Cluster to measure (default: a loopback cluster the run starts)")
	clusterEvents := fs.Int("cluster-events", d.Cluster.Events, "cluster: events applied per phase")
	failovers := fs.Int("failovers", d.Cluster.Failovers, "cluster: failovers timed per deployment (0: none)")
	jsonPath := fs.String("json", "", "also write the report as JSON to this file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the whole run to this file")
	quick := fs.Bool("quick", false, "tiny sizes for a smoke run (the figures mean nothing)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")

	ingestConc := fs.Int("ingest-concurrency", d.Ingest.Concurrency, "ingest: requests in flight (and baseline publishes)")
	ingestReqs := fs.Int("ingest-requests", d.Ingest.Requests, "ingest: most requests per throughput phase (and distinct events)")
	ingestDur := fs.Duration("ingest-duration", d.Ingest.Duration, "ingest: longest throughput phase")
	ingestRate := fs.Float64("rate", d.Ingest.Rate, "ingest: offered rate of the latency phase (0: skip it)")
	latencyDur := fs.Duration("latency-duration", d.Ingest.LatencyDuration, "ingest: length of each latency window")
	latencyWindows := fs.Int("latency-windows", d.Ingest.LatencyWindows, "ingest: latency windows per side (0: skip the latency phase)")
	rounds := fs.Int("rounds", d.Ingest.Rounds, "ingest and apply: alternating baseline/system rounds")
	applyEvents := fs.Int("apply-events", d.Apply.Events, "apply: events in the pre-filled stream")
	workers := fs.Int("workers", d.Apply.Workers, "apply and e2e: workers in the process (and baseline pipelines)")
	batch := fs.Int("batch-size", d.Apply.BatchSize, "apply and e2e: worker batch size (and baseline pipeline length)")
	events := fs.Int("events", d.E2E.Events, "e2e: events in the burst")
	levels := fs.String("levels", joinInts(d.Tracked.Levels), "sweep and memory: tracked inquiries measured, ascending")
	due := fs.Int("due", d.Tracked.Due, "sweep: due reminders at each level")
	reps := fs.Int("reps", d.Tracked.Reps, "sweep: ClaimDue calls timed per level")
	fillEvents := fs.Int("fill-events", d.Tracked.EventsPerInquiry, "sweep and memory: events applied per tracked inquiry, 1 (started) or 2 (created, started)")
	personaWindow := fs.Duration("persona-window", d.Persona.Window, "persona: rate window of simulator and limiter (shorter: same rate per minute, quicker)")
	personaWindows := fs.Int("persona-windows", d.Persona.Windows, "persona: windows measured")
	personaClients := fs.Int("persona-clients", d.Persona.Clients, "persona: clients sharing the limiter")
	backlogReminders := fs.Int("backlog-reminders", d.Backlog.Reminders, "backlog: reminders due at once")
	backlogReplicas := fs.Int("backlog-replicas", d.Backlog.Replicas, "backlog: notify replicas")
	backlogBudget := fs.Int("backlog-budget", d.Backlog.PerWindow, "backlog: Persona calls per --backlog-window, shared by the replicas")
	backlogWindow := fs.Duration("backlog-window", d.Backlog.Window, "backlog: the Persona budget's window")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := d
	if *quick {
		o = o.Quick()
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.RedisURL, o.NATSURL, o.Scenarios = *redisURL, *natsURL, fs.Args()
	o.RedisTLS = redisconn.TLSFiles{CAFile: *redisCA, CertFile: *redisCert, KeyFile: *redisKey}
	if !*inprocLoadgen {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: find own executable for the load generator: %w", err)
		}
		o.Loadgen = []string{exe, "bench", "_loadgen"}
	}
	if *natsReplicas < 1 {
		return fmt.Errorf("bench: --nats-replicas %d: want 1 or more", *natsReplicas)
	}
	if *natsReplicas > 1 && *natsSync != "" {
		return errors.New("bench: --nats-sync applies to one embedded server, not to the cluster of --nats-replicas")
	}
	o.NATSReplicas = *natsReplicas
	if *natsSync != "" {
		sync, err := eventstream.ParseSync(*natsSync)
		if err != nil {
			return fmt.Errorf("bench: --nats-sync: %w", err)
		}
		o.NATSSync = sync
	}
	if len(o.Scenarios) == 1 && o.Scenarios[0] == "all" {
		o.Scenarios = nil
	}
	if !*quiet {
		o.Progress = stderr
	}
	// Explicit flags win over --quick.
	apply := func(name string, f func()) {
		if set[name] {
			f()
		}
	}
	apply("ingest-concurrency", func() { o.Ingest.Concurrency = *ingestConc })
	apply("ingest-requests", func() { o.Ingest.Requests = *ingestReqs })
	apply("ingest-duration", func() { o.Ingest.Duration = *ingestDur })
	apply("rate", func() { o.Ingest.Rate = *ingestRate })
	apply("latency-duration", func() { o.Ingest.LatencyDuration = *latencyDur })
	apply("latency-windows", func() { o.Ingest.LatencyWindows = *latencyWindows })
	apply("rounds", func() { o.Ingest.Rounds, o.Apply.Rounds = *rounds, *rounds })
	apply("apply-events", func() { o.Apply.Events = *applyEvents })
	apply("workers", func() { o.Apply.Workers, o.E2E.Workers = *workers, *workers })
	apply("batch-size", func() { o.Apply.BatchSize, o.E2E.BatchSize = *batch, *batch })
	apply("events", func() { o.E2E.Events = *events })
	apply("cluster-events", func() { o.Cluster.Events = *clusterEvents })
	apply("failovers", func() { o.Cluster.Failovers = *failovers })
	o.Cluster.URL = *clusterURL
	o.Cluster.Failover = o.Cluster.Failovers > 0
	apply("due", func() { o.Tracked.Due = *due })
	apply("reps", func() { o.Tracked.Reps = *reps })
	apply("fill-events", func() { o.Tracked.EventsPerInquiry = *fillEvents })
	apply("persona-window", func() { o.Persona.Window = *personaWindow })
	apply("persona-windows", func() { o.Persona.Windows = *personaWindows })
	apply("persona-clients", func() { o.Persona.Clients = *personaClients })
	apply("backlog-reminders", func() { o.Backlog.Reminders = *backlogReminders })
	apply("backlog-replicas", func() { o.Backlog.Replicas = *backlogReplicas })
	apply("backlog-budget", func() { o.Backlog.PerWindow = *backlogBudget })
	apply("backlog-window", func() { o.Backlog.Window = *backlogWindow })
	if set["levels"] {
		ls, err := parseInts(*levels)
		if err != nil {
			return fmt.Errorf("bench: --levels: %w", err)
		}
		o.Tracked.Levels = ls
	}
	if err := checkBenchOptions(o); err != nil {
		return fmt.Errorf("bench: %w", err)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench: start cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	rep, runErr := bench.Run(ctx, o)
	if rep != nil {
		rep.Print(stdout)
		if *jsonPath != "" {
			if err := writeJSON(*jsonPath, rep); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
		}
	}
	if *memProfile != "" {
		runtime.GC()
		if err := writeHeapProfile(*memProfile); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	if runErr != nil {
		return fmt.Errorf("bench: %w", runErr)
	}
	return nil
}

// checkBenchOptions refuses sizes no scenario can run with.
func checkBenchOptions(o bench.Options) error {
	var errs []error
	positive := map[string]int{
		"--ingest-concurrency": o.Ingest.Concurrency, "--ingest-requests": o.Ingest.Requests, "--rounds": o.Ingest.Rounds,
		"--apply-events": o.Apply.Events, "--workers": o.Apply.Workers, "--batch-size": o.Apply.BatchSize,
		"--events": o.E2E.Events, "--due": o.Tracked.Due, "--reps": o.Tracked.Reps,
		"--persona-windows": o.Persona.Windows, "--persona-clients": o.Persona.Clients,
		"--backlog-reminders": o.Backlog.Reminders, "--backlog-replicas": o.Backlog.Replicas,
		"--backlog-budget": o.Backlog.PerWindow,
	}
	for name, v := range positive {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s %d: must be positive", name, v))
		}
	}
	if o.Apply.BatchSize > 4096 {
		errs = append(errs, fmt.Errorf("--batch-size %d: at most 4096", o.Apply.BatchSize))
	}
	if o.Tracked.EventsPerInquiry != 1 && o.Tracked.EventsPerInquiry != 2 {
		errs = append(errs, fmt.Errorf("--fill-events %d: 1 or 2", o.Tracked.EventsPerInquiry))
	}
	if o.Ingest.Duration <= 0 || o.Ingest.LatencyDuration <= 0 || o.Persona.Window < 100*time.Millisecond {
		errs = append(errs, errors.New("--ingest-duration and --latency-duration must be positive, --persona-window at least 100ms"))
	}
	for i, l := range o.Tracked.Levels {
		if l <= o.Tracked.Due || (i > 0 && l <= o.Tracked.Levels[i-1]) {
			errs = append(errs, fmt.Errorf("--levels %s: ascending, each above --due %d", joinInts(o.Tracked.Levels), o.Tracked.Due))
			break
		}
	}
	return errors.Join(errs...)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
