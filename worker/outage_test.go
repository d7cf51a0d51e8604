package worker

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// probedStore is the real store, counting the worker's write probes and failed ones, with
// every batch slowed by delay so that a test can act while the worker is mid-stream.
type probedStore struct {
	*state.Store
	delay             time.Duration
	probes, probeFail atomic.Int64
}

func (p *probedStore) ApplyBatch(ctx context.Context, events []*persona.Event) ([]state.Result, error) {
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.Store.ApplyBatch(ctx, events)
}

func (p *probedStore) Ping(ctx context.Context) error {
	p.probes.Add(1)
	err := p.Store.Ping(ctx)
	if err != nil {
		p.probeFail.Add(1)
	}
	return err
}

// outageOptions are the options of the outage tests: a small MaxDeliver, so that a worker
// that spent a delivery per failed round would dead-letter within the outage, and an AckWait
// short enough that the held messages outlive two of them in seconds, yet long enough that
// the worker's InProgress every third of it (2 s) still lands in time after a 4 s CPU stall
// of a loaded test machine (with 2 s, a 1.3 s stall let a held message time out).
func (e *env) outageOptions(store Applier) Options {
	o := e.options(store)
	o.MaxDeliver = 2
	o.AckWait = 6 * time.Second
	o.BatchSize = 25
	return o
}

// publishStarted publishes inquiry.started for inquiries inq_<tag>0 .. n-1.
func (e *env) publishStarted(t *testing.T, tag string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		e.publishEvent(t, testEvent{ID: fmt.Sprintf("evt_%s%d", tag, i), Name: "inquiry.started",
			InquiryID: fmt.Sprintf("inq_%s%d", tag, i), Status: persona.StatusPending, At: testNow.Add(-time.Hour)})
	}
}

// checkAppliedOnce checks that the outage cost nothing: every event acknowledged, none
// dead-lettered, every inquiry pending, and the store's counters counting each once.
func (e *env) checkAppliedOnce(t *testing.T, r *running, tag string, n int) {
	t.Helper()
	eventually(t, 60*time.Second, "every event acknowledged", func() bool {
		info := e.consumerInfo(t, "")
		return info.AckFloor.Stream == uint64(n) && info.NumAckPending == 0 && info.NumPending == 0
	})
	if d := e.dlqMsgs(t); d != 0 {
		t.Errorf("%d events dead-lettered because of a store outage", d)
	}
	for _, reason := range deadReasons {
		if got := testutil.ToFloat64(r.w.metrics.deadLetters.WithLabelValues(reason)); got != 0 {
			t.Errorf("dead_letters_total{%s} = %v", reason, got)
		}
	}
	for i := range n {
		id := fmt.Sprintf("inq_%s%d", tag, i)
		if inq := inquiry(t, e.store, id); inq == nil || inq.Status != persona.StatusPending {
			t.Fatalf("%s = %+v, want pending", id, inq)
		}
	}
	counts, err := e.store.CountByStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counts[persona.StatusPending] != int64(n) {
		t.Errorf("store counts %v, want %d pending: an event was applied twice or not at all", counts, n)
	}
	if got := testutil.ToFloat64(r.w.metrics.storeUnavailable); got != 0 {
		t.Errorf("resumer_worker_store_unavailable = %v after the outage", got)
	}
	eventually(t, 10*time.Second, "no unapplied event left", func() bool {
		return testutil.ToFloat64(r.w.metrics.oldestUnapplied) == 0
	})
}

// TestWorkerHoldsThroughOOM makes Redis refuse writes (maxmemory 1 with noeviction: OOM,
// while PING still answers) for longer than MaxDeliver rounds and several AckWaits, then lifts
// the limit: nothing is dead-lettered, no delivery is spent, everything is applied once.
func TestWorkerHoldsThroughOOM(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := redisClient(t, srv.Addr())
	e := newEnvWithRedis(t, rdb, testenv.Prefix(t))
	ctx := context.Background()
	store := &probedStore{Store: e.store}
	r := start(t, e.outageOptions(store))

	const before, during = 30, 70
	e.publishStarted(t, "o", 0, before)
	eventually(t, 20*time.Second, "first events applied", func() bool {
		return e.consumerInfo(t, "").AckFloor.Stream == before
	})
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING under OOM: %v (the test needs a Redis that still answers)", err)
	}
	if err := e.store.Ping(ctx); err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("store write probe under OOM = %v, want an OOM error", err)
	}
	outage := time.Now()
	e.publishStarted(t, "o", before, during)
	opts := r.w.opts
	eventually(t, 60*time.Second, "more failed rounds than MaxDeliver, over several AckWaits", func() bool {
		return store.probeFail.Load() > int64(opts.MaxDeliver+2) && time.Since(outage) > 2*opts.AckWait
	})
	if got := testutil.ToFloat64(r.w.metrics.storeUnavailable); got != 1 {
		t.Errorf("resumer_worker_store_unavailable = %v during the outage", got)
	}
	if got := testutil.ToFloat64(r.w.metrics.held); got == 0 {
		t.Error("resumer_worker_held_messages = 0 during the outage")
	}
	eventually(t, 10*time.Second, "the oldest unapplied event's age reported", func() bool {
		return testutil.ToFloat64(r.w.metrics.oldestUnapplied) > 0
	})
	info := e.consumerInfo(t, "")
	t.Logf("during the outage: %v failed applies, %d failed probes; ack floor %d, ack pending %d, redelivered %d",
		testutil.ToFloat64(r.w.metrics.storeFailures), store.probeFail.Load(), info.AckFloor.Stream, info.NumAckPending, info.NumRedelivered)
	if info.AckFloor.Stream != before {
		t.Fatalf("ack floor moved to %d while Redis refused writes", info.AckFloor.Stream)
	}
	if info.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered: the outage spent deliveries", info.NumRedelivered)
	}

	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	e.checkAppliedOnce(t, r, "o", before+during)
}

// TestWorkerHoldsThroughFailover promotes the replica mid-stream the way a failover does
// (the primary's writes paused, the replica caught up, REPLICAOF NO ONE on the replica,
// REPLICAOF on the old primary), with the worker's client following the primary as Sentinel
// or a DNS name would: the worker meets READONLY, holds, and applies everything once on the
// new primary, dead-lettering nothing.
func TestWorkerHoldsThroughFailover(t *testing.T) {
	primary, replica := testenv.StartRedis(t), testenv.StartRedis(t)
	ctx := context.Background()
	admin := func(s *testenv.RedisServer) *redis.Client { return redisClient(t, s.Addr()) }
	pAdmin, rAdmin := admin(primary), admin(replica)
	host, port, _ := net.SplitHostPort(primary.Addr())
	if err := rAdmin.SlaveOf(ctx, host, port).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "replica in sync", func() bool {
		info, _ := rAdmin.Info(ctx, "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})

	var current atomic.Value // the address the worker's connections dial
	current.Store(primary.Addr())
	rdb := redis.NewClient(&redis.Options{
		Addr: "primary",
		Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, current.Load().(string))
		},
		DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: -1,
	})
	t.Cleanup(func() { rdb.Close() })
	e := newEnvWithRedis(t, rdb, testenv.Prefix(t))
	const n = 600
	e.publishStarted(t, "f", 0, n)
	store := &probedStore{Store: e.store, delay: 100 * time.Millisecond} // 24 batches: 2.4 s
	r := start(t, e.outageOptions(store))
	eventually(t, 30*time.Second, "the worker mid-stream", func() bool {
		return e.consumerInfo(t, "").AckFloor.Stream >= 50
	})

	// The failover: no write may land on the old primary once the replica is promoted.
	if err := pAdmin.Do(ctx, "CLIENT", "PAUSE", 10000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "replica caught up", func() bool {
		return replOffset(t, pAdmin, "master_repl_offset") == replOffset(t, rAdmin, "slave_repl_offset")
	})
	if err := rAdmin.SlaveOf(ctx, "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	rhost, rport, _ := net.SplitHostPort(replica.Addr())
	if err := pAdmin.SlaveOf(ctx, rhost, rport).Err(); err != nil {
		t.Fatal(err)
	}
	acked := e.consumerInfo(t, "").AckFloor.Stream
	if err := pAdmin.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the worker met the read-only old primary", func() bool {
		return testutil.ToFloat64(r.w.metrics.storeFailures) >= 1
	})
	if acked == n {
		t.Fatal("the worker finished before the failover")
	}
	t.Logf("failover at ack floor %d; %v failed applies so far", acked, testutil.ToFloat64(r.w.metrics.storeFailures))
	current.Store(replica.Addr()) // Sentinel (or DNS) now names the new primary

	e.checkAppliedOnce(t, r, "f", n)
	info, _ := pAdmin.Info(ctx, "replication").Result()
	if !strings.Contains(info, "role:slave") {
		t.Errorf("old primary is not a replica:\n%s", info)
	}
}

// replOffset reads a replication offset field from INFO replication.
func replOffset(t *testing.T, c *redis.Client, field string) string {
	t.Helper()
	info, err := c.Info(context.Background(), "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return "?" + field
}
