package bench

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/clustertest"
	"github.com/resumer/resumer/internal/redisconn"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// ClusterOptions size the cluster scenario.
type ClusterOptions struct {
	// URL is the Redis Cluster to measure apply throughput on; empty starts a loopback
	// cluster of 3 primaries and 3 replicas (needs redis-server and redis-cli).
	URL string
	// Events applied per phase and round; Rounds alternates single node and cluster.
	Events, Rounds int
	// Batch is the events per ApplyBatch call, Appliers the calls in flight.
	Batch, Appliers int
	// Failover measures failover times on loopback clusters it starts (a Redis Cluster and a
	// Sentinel set), Failovers times each.
	Failover  bool
	Failovers int
}

// runCluster measures the apply throughput of the state store on a Redis Cluster against the
// single node of the run (Options.RedisURL), in alternating rounds, and, with o.Failover, the
// time from a kill -9 of a primary to the first successful apply and to a passing readiness
// check, on a loopback Redis Cluster and a loopback Sentinel set.
func (e *env) runCluster(ctx context.Context, o ClusterOptions) ([]*Table, error) {
	t := newTable("cluster", "state store applies: Redis Cluster (3 primaries, 3 replicas) vs the single node of the run",
		"phase", "round", "events", "time", "rate")
	url := o.URL
	singleRDB := e.rdb
	if url == "" {
		dir, err := os.MkdirTemp("", "resumer-bench-cluster-")
		if err != nil {
			return nil, err
		}
		defer removeAll(dir, e.log)
		e.log("cluster: starting a loopback redis cluster and a single node to compare with")
		loopback, err := clustertest.StartRedisCluster(ctx, dir, 3)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		defer loopback.Close()
		url = loopback.URL()
		// The baseline runs under the same conditions: a private redis-server of the same
		// build, not the shared one the run was given.
		single, err := clustertest.StartRedisNode(dir)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		defer single.Kill()
		singleRDB = redis.NewClient(&redis.Options{Addr: single.Addr(), PoolSize: 64})
		defer singleRDB.Close()
		t.note("the cluster: 6 redis-server processes on this machine (cluster-node-timeout %s); the single node: one more, private to the run", clustertest.NodeTimeout)
	} else {
		t.note("the cluster: %s; the single node: the run's Redis", redactedURL(url))
	}
	opts, mode, err := redisconn.Parse(url)
	if err != nil {
		return nil, fmt.Errorf("cluster url: %w", err)
	}
	if mode != redisconn.Cluster {
		return nil, fmt.Errorf("cluster url: names a %s deployment, not a Redis Cluster", mode)
	}
	opts.PoolSize = max(opts.PoolSize, 64)
	crdb := redis.NewUniversalClient(opts)
	defer crdb.Close()
	if err := redisconn.Ping(ctx, crdb); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}

	inquiries := (o.Events + 1) / 2
	gen := corpus(e.seed^0xC1A5, inquiries, time.Now(), false)
	events := make([]*persona.Event, len(gen))
	for i := range gen {
		events[i] = gen[i].event()
	}
	t.note("%d events (created, then started, for %d inquiries) per phase; ApplyBatch of %d, %d calls in flight; 16 shards; fresh key prefix per phase",
		len(events), inquiries, o.Batch, o.Appliers)
	var single, clustered, durable []float64
	for round := 1; round <= o.Rounds; round++ {
		for _, phase := range []struct {
			name string
			rdb  redis.UniversalClient
			acks int
			into *[]float64
		}{
			{"single node", singleRDB, 0, &single},
			{"cluster", crdb, 0, &clustered},
			{"cluster, 1 replica ack", crdb, 1, &durable},
		} {
			e.log("cluster: round %d, %s", round, phase.name)
			prefix := e.redisPrefix("cluster-" + strconv.Itoa(round))
			store, err := state.New(phase.rdb, state.Config{Prefix: prefix, ReplicaAcks: phase.acks})
			if err != nil {
				return []*Table{t}, err
			}
			took, err := applyConcurrently(ctx, store, events, o.Batch, o.Appliers)
			if _, derr := deletePrefix(context.Background(), phase.rdb, prefix); derr != nil {
				e.log("clean up: %v", derr)
			}
			if err != nil {
				return []*Table{t}, fmt.Errorf("cluster %s: %w", phase.name, err)
			}
			r := float64(len(events)) / took.Seconds()
			*phase.into = append(*phase.into, r)
			t.row(phase.name, itoa(round), itoa(len(events)), secs(took), rate(r))
		}
	}
	ms, mc, md := median(single), median(clustered), median(durable)
	t.Metrics["single_rate"], t.Metrics["cluster_rate"], t.Metrics["cluster_acked_rate"] = ms, mc, md
	t.Metrics["ratio"], t.Metrics["acked_ratio"] = mc/ms, md/ms
	t.target("cluster apply throughput", "recorded (parity expected on 2 cores)", mc/ms, true,
		fmt.Sprintf("%.2f × (cluster %s vs single node %s; with a replica ack per write %.2f ×, medians of %d rounds)", mc/ms, rate(mc), rate(ms), md/ms, o.Rounds))
	t.note("a Redis node runs its scripts on one thread: three primaries can use more cores than one, but here they share two cores with the benchmark, so the ratio says little about a cluster spread over machines")
	tables := []*Table{t}
	if !o.Failover {
		return tables, nil
	}
	ft, err := e.runFailover(ctx, o)
	if ft != nil {
		tables = append(tables, ft)
	}
	return tables, err
}

// applyConcurrently applies events through store in batches, appliers calls in flight, and
// returns the time taken. Any failure is an error: nothing fails over here.
func applyConcurrently(ctx context.Context, store *state.Store, events []*persona.Event, batch, appliers int) (time.Duration, error) {
	return inChunks(ctx, len(events), batch, appliers, func(lo, hi int) error {
		results, err := store.ApplyBatch(ctx, events[lo:hi])
		for _, r := range results {
			if err == nil {
				err = r.Err
			}
		}
		return err
	})
}

// runFailover kills -9 a primary of a loopback Redis Cluster and of a loopback Sentinel set
// while a writer applies a batch touching every shard every 10 ms, and measures the time from
// the kill to the first batch that succeeds again and to the first passing readiness check
// (redisconn.Ping, what /readyz runs).
func (e *env) runFailover(ctx context.Context, o ClusterOptions) (*Table, error) {
	t := newTable("failover", "kill -9 of a Redis primary under writes: time to the first successful apply and to readiness",
		"deployment", "try", "first apply", "ready", "failed batches")
	t.note("loopback clusters started by the run: cluster-node-timeout and Sentinel down-after-milliseconds %s; writes wait for 1 replica; one ApplyBatch of 16 events every 10 ms, some of them in the killed primary's slots", clustertest.NodeTimeout)
	t.note("first apply: the kill to the end of the first ApplyBatch that succeeds (a call started during the failover waits in go-redis' retries and succeeds late); ready: to the first passing readiness check (redisconn.Ping, polled every 10 ms)")
	var errs []error
	for _, kind := range []string{"cluster", "sentinel"} {
		var applies, readies []float64
		for try := 1; try <= o.Failovers; try++ {
			first, ready, failed, err := e.failoverOnce(ctx, kind, try)
			if err != nil {
				errs = append(errs, fmt.Errorf("failover %s: %w", kind, err))
				break
			}
			applies, readies = append(applies, float64(first.Milliseconds())), append(readies, float64(ready.Milliseconds()))
			t.row(kind, itoa(try), secs(first), secs(ready), itoa(failed))
		}
		if len(applies) > 0 {
			t.Metrics[kind+"_first_apply_ms"], t.Metrics[kind+"_ready_ms"] = median(applies), median(readies)
		}
	}
	return t, errors.Join(errs...)
}

func (e *env) failoverOnce(ctx context.Context, kind string, try int) (first, ready time.Duration, failed int, err error) {
	dir, err := os.MkdirTemp("", "resumer-bench-failover-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer removeAll(dir, e.log)
	e.log("failover: %s, try %d: starting", kind, try)
	gen := corpus(e.seed^0xFA11, 16, time.Now(), false)
	var url string
	var kill func() error
	switch kind {
	case "cluster":
		c, err := clustertest.StartRedisCluster(ctx, dir, 3)
		if err != nil {
			return 0, 0, 0, err
		}
		defer c.Close()
		url = c.URL()
		// the primary of the first inquiry's shard (fnv32a of its id mod 16, as the store
		// places it), so the writer's batches need the failover
		h := fnv.New32a()
		h.Write([]byte(gen[0].InquiryID))
		key := "bench:{" + strconv.Itoa(int(h.Sum32()%16)) + "}:r"
		kill = func() error {
			p, err := c.PrimaryOf(ctx, key)
			if err == nil {
				p.Kill()
			}
			return err
		}
	default:
		s, err := clustertest.StartSentinel(ctx, dir)
		if err != nil {
			return 0, 0, 0, err
		}
		defer s.Close()
		url = s.URL()
		kill = func() error {
			p, err := s.Primary(ctx)
			if err == nil {
				p.Kill()
			}
			return err
		}
	}
	rdb, _, err := redisconn.New(url)
	if err != nil {
		return 0, 0, 0, err
	}
	defer rdb.Close()
	store, err := state.New(rdb, state.Config{Prefix: "bench", Shards: 16, ReplicaAcks: 1})
	if err != nil {
		return 0, 0, 0, err
	}
	batchOf := func(n int) []*persona.Event {
		evs := make([]*persona.Event, 0, len(gen))
		for i := range gen {
			ev := gen[i].event()
			ev.ID = fmt.Sprintf("%s_%d", ev.ID, n)
			evs = append(evs, ev)
		}
		return evs
	}
	apply := func(n int) error {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		results, err := store.ApplyBatch(actx, batchOf(n))
		for _, r := range results {
			if err == nil {
				err = r.Err
			}
		}
		return err
	}
	for n := range 20 { // warm: scripts loaded, connections open
		if err := apply(n); err != nil {
			return 0, 0, 0, fmt.Errorf("before the kill: %w", err)
		}
	}
	if err := kill(); err != nil {
		return 0, 0, 0, err
	}
	killed := time.Now()
	deadline := killed.Add(2 * time.Minute)
	var readyAt time.Time
	readyDone := make(chan struct{})
	go func() {
		defer close(readyDone)
		sawFailure := false
		for time.Now().Before(deadline) {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := redisconn.Ping(pctx, rdb)
			cancel()
			if err != nil {
				sawFailure = true
			} else if sawFailure || time.Since(killed) > 30*time.Second {
				readyAt = time.Now()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	n := 100
	for {
		if time.Now().After(deadline) {
			return 0, 0, failed, fmt.Errorf("no successful apply within 2 minutes of the kill")
		}
		n++
		if err := apply(n); err == nil {
			first = time.Since(killed)
			break
		}
		failed++
		time.Sleep(10 * time.Millisecond)
	}
	<-readyDone
	if readyAt.IsZero() {
		return first, 0, failed, fmt.Errorf("readiness not back within 2 minutes of the kill")
	}
	return first, readyAt.Sub(killed), failed, nil
}

// redactedURL drops the password of a Redis URL for the report.
func redactedURL(raw string) string {
	o, mode, err := redisconn.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return fmt.Sprintf("%s %v", mode, o.Addrs)
}
