package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/clustertest"
	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/webhook"
)

// TestCorpus checks the generated events: Persona's envelope, 2 to 4 KB, unique ids, and a
// body that persona.ParseEvent reads as exactly the event the direct fill applies.
func TestCorpus(t *testing.T) {
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	events := corpus(42, 500, base, true)
	if len(events) != 1000 {
		t.Fatalf("%d events, want 1000", len(events))
	}
	ids := map[string]bool{}
	for i := range events {
		g := &events[i]
		if n := len(g.Body); n < 2048 || n > 4096 {
			t.Errorf("event %d: body of %d bytes, want 2-4 KB", i, n)
		}
		if !json.Valid(g.Body) {
			t.Fatalf("event %d: invalid JSON: %s", i, g.Body)
		}
		if ids[g.ID] {
			t.Fatalf("event id %s twice", g.ID)
		}
		ids[g.ID] = true
		got, err := persona.ParseEvent(g.Body)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := g.event(); !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d parses as\n%+v %+v\nwant\n%+v %+v", i, got, got.Inquiry, want, want.Inquiry)
		}
		if err := webhook.Verify(webhook.Sign(g.Body, []byte("s"), base), g.Body, [][]byte{[]byte("s")}, base, 0); err != nil {
			t.Fatalf("event %d: signature: %v", i, err)
		}
	}
	if again := corpus(42, 500, base, true); !bytes.Equal(again[777].Body, events[777].Body) {
		t.Fatal("corpus is not deterministic")
	}
}

// runBench runs o within three minutes and returns the run's context, for checks after it,
// and its report. It fails the test with the run's progress lines when the run fails.
func runBench(t *testing.T, o Options) (context.Context, *Report) {
	t.Helper()
	var progress bytes.Buffer
	o.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	return ctx, rep
}

// TestRunQuick runs every scenario with a few hundred events against an embedded NATS and
// the test Redis, and checks that each completes with sane figures. It asserts nothing about
// speed: that is what the harness measures, on a machine of its own.
func TestRunQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every benchmark scenario")
	}
	o := Default().Quick()
	o.RedisURL = testenv.RedisURL(t)
	ctx, rep := runBench(t, o)
	tables := map[string]*Table{}
	for _, tb := range rep.Tables {
		tables[tb.Scenario] = tb
		if len(tb.Rows) == 0 {
			t.Errorf("%s: no rows", tb.Scenario)
		}
	}
	for _, s := range Scenarios {
		if tables[s] == nil {
			t.Fatalf("no table for scenario %s", s)
		}
	}
	positive := func(scenario, metric string) {
		t.Helper()
		if v := tables[scenario].Metrics[metric]; !(v > 0) {
			t.Errorf("%s: metric %s = %v, want > 0", scenario, metric, v)
		}
	}
	positive("ingest", "baseline_rate")
	positive("ingest", "receiver_rate")
	positive("ingest", "throughput_ratio")
	positive("apply", "baseline_rate")
	positive("apply", "worker_rate")
	positive("e2e", "rate")
	positive("sweep", "ratio")
	positive("persona", "calls_per_minute")

	e2e := tables["e2e"]
	if e2e.Metrics["lost"] != 0 || e2e.Metrics["dead_lettered"] != 0 || e2e.Metrics["http_failed"] != 0 {
		t.Errorf("e2e lost events: %v", e2e.Metrics)
	}
	for _, n := range e2e.Notes {
		if strings.Contains(n, "PROBLEM") {
			t.Errorf("e2e: %s", n)
		}
	}
	for _, level := range o.Tracked.Levels {
		k := itoa(level)
		per := tables["memory"].Metrics["memory_usage_bytes_per_inquiry_"+k]
		if per < 50 || per > 10_000 {
			t.Errorf("memory at %d: %v bytes per inquiry by MEMORY USAGE", level, per)
		}
		positive("sweep", "claimdue_p50_ms_"+k)
	}
	if tables["persona"].Metrics["errors"] != 0 {
		t.Errorf("persona: client errors: %v", tables["persona"].Notes)
	}

	// The run deletes everything it made.
	c, _ := testenv.Redis(t)
	keys, err := c.Keys(ctx, "bench-"+rep.Run+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("keys left behind: %v (%v)", keys, err)
	}
	var out bytes.Buffer
	rep.Print(&out)
	if !strings.Contains(out.String(), "== persona") {
		t.Errorf("printed report lacks the persona table:\n%s", out.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("report does not encode as JSON: %v", err)
	}
}

// TestClusterScenario runs the opt-in cluster scenario at smoke size on loopback clusters it
// starts: apply throughput on a Redis Cluster against a private single node, and one
// failover each of a Redis Cluster and a Sentinel set. It skips without the Redis binaries.
func TestClusterScenario(t *testing.T) {
	if err := clustertest.RequireBinaries(); err != nil {
		t.Skipf("skipping the cluster scenario: %v", err)
	}
	t.Parallel()
	o := Default().Quick()
	o.RedisURL = testenv.RedisURL(t)
	o.Scenarios = []string{"cluster"}
	o.Cluster.Failover = true
	_, rep := runBench(t, o)
	tables := map[string]*Table{}
	for _, tb := range rep.Tables {
		tables[tb.Scenario] = tb
	}
	if tables["cluster"] == nil || tables["failover"] == nil {
		t.Fatalf("tables %v, want cluster and failover", tables)
	}
	for _, m := range []string{"single_rate", "cluster_rate", "cluster_acked_rate", "ratio"} {
		if v := tables["cluster"].Metrics[m]; !(v > 0) {
			t.Errorf("cluster: %s = %v", m, v)
		}
	}
	for _, m := range []string{"cluster_first_apply_ms", "cluster_ready_ms", "sentinel_first_apply_ms", "sentinel_ready_ms"} {
		if v := tables["failover"].Metrics[m]; !(v > 0) {
			t.Errorf("failover: %s = %v", m, v)
		}
	}
}

// TestRunIngestOnNATSCluster runs the quick ingest and e2e scenarios against a loopback
// cluster of three embedded NATS servers (Options.NATSReplicas): the streams are R3, the
// receiver's events are stored and applied, and the report says what NATS it measured.
func TestRunIngestOnNATSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	o := Default().Quick()
	o.RedisURL = testenv.RedisURL(t)
	o.NATSReplicas = 3
	o.Scenarios = []string{"ingest", "e2e"}
	o.Ingest.LatencyWindows = 0
	ctx, rep := runBench(t, o)
	if !strings.Contains(rep.Machine.NATS, "cluster of 3") || !strings.Contains(rep.Machine.NATS, "R3") {
		t.Errorf("report says NATS %q, want the cluster of 3 with R3 streams", rep.Machine.NATS)
	}
	for _, tb := range rep.Tables {
		switch tb.Scenario {
		case "ingest":
			if !(tb.Metrics["receiver_rate"] > 0) || !(tb.Metrics["baseline_rate"] > 0) {
				t.Errorf("ingest on R3: %v", tb.Metrics)
			}
		case "e2e":
			if tb.Metrics["lost"] != 0 || tb.Metrics["dead_lettered"] != 0 || !(tb.Metrics["rate"] > 0) {
				t.Errorf("e2e on R3: %v", tb.Metrics)
			}
		}
	}

	// The streams the run makes on a cluster have that many replicas.
	nc := clustertest.NATSClusterT(t)
	conn, js, err := connectNATS(nc.URL(), "bench-test")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	e := &env{run: "r3test", js: js, replicas: 3, log: t.Logf}
	name := e.streamName("replicas")
	if err := e.ensureStream(ctx, name); err != nil {
		t.Fatal(err)
	}
	defer e.deleteStream(name)
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Errorf("stream on the cluster: %+v (%v); want 3 replicas, a leader and 2 followers", info, err)
	}

	o.NATSSync = eventstream.Sync{Always: true}
	if _, err := Run(ctx, o); err == nil || !strings.Contains(err.Error(), "sync_interval") {
		t.Errorf("a sync_interval with the cluster: err = %v, want a refusal", err)
	}
}
