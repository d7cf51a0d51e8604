package state

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/clustertest"
	"github.com/resumer/resumer/internal/redisconn"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
)

// TestStoreOnRedisCluster runs every script and command of the store against a real Redis
// Cluster of 3 primaries and 3 replicas (DESIGN.md decision 3): a command whose keys span two
// slots fails there with CROSSSLOT, so a pass means every one is single-slot on a cluster,
// not only by the test's own slot arithmetic. Writes wait for a replica (ReplicaAcks 1). Then
// the script caches are flushed on every node (as after a failover or restart: NOSCRIPT),
// and then slots are resharded between primaries while events are applied: nothing is lost
// and no event fails on its own (which the worker would retry and, in the end, dead-letter).
func TestStoreOnRedisCluster(t *testing.T) {
	t.Parallel()
	cluster := clustertest.RedisClusterT(t)
	client, mode, err := redisconn.New(cluster.URL())
	if err != nil || mode != redisconn.Cluster {
		t.Fatalf("redisconn.New: %v, mode %s", err, mode)
	}
	t.Cleanup(func() { client.Close() })
	prefix := testenv.Prefix(t)
	f := fixtureOn(t, client, prefix, func(c *Config) { c.Shards = 64; c.ReplicaAcks = 1; c.Retention = time.Hour })
	ctx := context.Background()

	primaries, err := cluster.Primaries(ctx)
	if err != nil || len(primaries) != 3 {
		t.Fatalf("primaries: %d, %v", len(primaries), err)
	}
	used := map[*clustertest.RedisNode]bool{}
	for shard := range 64 {
		p, err := cluster.PrimaryOf(ctx, f.store.keys.records(shard))
		if err != nil {
			t.Fatal(err)
		}
		used[p] = true
	}
	if len(used) != 3 {
		t.Fatalf("64 shards live on %d of 3 primaries", len(used))
	}

	t.Run("every script", func(t *testing.T) { exerciseStore(t, f, "a") })

	t.Run("NOSCRIPT after the script caches are flushed", func(t *testing.T) {
		if err := client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		exerciseStore(t, f, "b")
	})

	t.Run("resharding under load", func(t *testing.T) {
		reshardUnderLoad(t, cluster, f)
	})
}

// exerciseStore applies events for inquiries of every shard and calls every store method on
// them (reads, reminder claims, intents and settles, limiters, link uses, funnel, singleton
// lease and checkpoint, open-inquiry walk, win-backs, purge), failing the test on any error.
// A store method added later belongs here too. tag keeps the inquiry ids of two calls apart.
func exerciseStore(t *testing.T, f *fixture, tag string) {
	ctx := context.Background()
	x := f.clock.Now().Add(5 * time.Hour) // the 6h stage is due
	var events []*persona.Event
	ids := make([]string, 128)
	for i := range ids {
		ids[i] = fmt.Sprintf("inq_cl%s%d", tag, i)
		events = append(events, ev("evt_c"+tag, "inquiry.created", ids[i], t0, base(persona.StatusCreated, "itmpl_std")),
			ev("evt_s"+tag, "inquiry.started", ids[i], t0.Add(time.Minute), pendingUntil(x)))
	}
	results, err := f.store.ApplyBatch(ctx, events)
	if err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
	for i, r := range results {
		if r.Err != nil {
			t.Fatalf("event %d: %v", i, r.Err)
		}
	}
	for _, id := range ids {
		if inq := f.inquiry(t, id); inq.Status != persona.StatusPending {
			t.Fatalf("%s: status %s", id, inq.Status)
		}
	}
	if list, err := f.store.Expiring(ctx, 6*time.Hour, 1000); err != nil || len(list) < len(ids) {
		t.Fatalf("Expiring: %d, %v", len(list), err)
	}
	if _, err := f.store.CountExpiring(ctx, 6*time.Hour); err != nil {
		t.Fatalf("CountExpiring: %v", err)
	}
	if counts, err := f.store.CountByStatus(ctx); err != nil || counts[persona.StatusPending] < int64(len(ids)) {
		t.Fatalf("CountByStatus: %v, %v", counts, err)
	}
	now := f.clock.Now()
	if n, err := f.store.DueBacklog(ctx, now); err != nil || n < int64(len(ids)) {
		t.Fatalf("DueBacklog: %d, %v", n, err)
	}
	claims, err := f.store.ClaimDue(ctx, now, testLease, 1000)
	if err != nil || len(claims) < len(ids) {
		t.Fatalf("ClaimDue: %d, %v", len(claims), err)
	}
	for i, c := range claims {
		if i%2 == 0 {
			if err := f.store.RecordIntent(ctx, c, "6h"); err != nil {
				t.Fatalf("RecordIntent: %v", err)
			}
		}
		var err error
		switch i % 3 {
		case 0:
			err = f.store.CompleteReminder(ctx, c, "6h", nil)
		case 1:
			err = f.store.ReleaseClaim(ctx, c, now.Add(time.Minute))
		case 2:
			err = f.store.DropReminders(ctx, c, "test")
		}
		if err != nil {
			t.Fatalf("settle claim %d: %v", i, err)
		}
	}
	for _, id := range ids[:8] {
		a, err := f.store.AllowMint(ctx, id, 5, time.Hour)
		if err != nil || !a.Allowed {
			t.Fatalf("AllowMint: %+v, %v", a, err)
		}
		if err := f.store.UndoMint(ctx, id, a); err != nil {
			t.Fatalf("UndoMint: %v", err)
		}
	}
	if a, err := f.store.AllowAPIRequest(ctx, "acme", 10, time.Minute); err != nil || !a.Allowed {
		t.Fatalf("AllowAPIRequest: %+v, %v", a, err)
	}
	lim, err := NewRateLimiter(f.client, RateLimiterOptions{Prefix: f.prefix, Name: "persona" + tag, Limit: 100, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := lim.Wait(ctx); err != nil {
		t.Fatalf("RateLimiter.Wait: %v", err)
	}
	lim.Observe(ctx, 290, 300, time.Minute) // plenty left: records a pace without waiting
	// The reminders' links and funnel, the singleton lease and its fenced checkpoint, the
	// open-inquiry walk.
	for _, id := range ids[:8] {
		if _, err := f.store.MarkLink(ctx, id, LinkPressed); err != nil {
			t.Fatalf("MarkLink: %v", err)
		}
		if first, err := f.store.UseLink(ctx, id, "lnk_"+tag, now.Add(time.Hour)); err != nil || !first {
			t.Fatalf("UseLink: %v, %v", first, err)
		}
		if used, err := f.store.LinkUsed(ctx, id, "lnk_"+tag); err != nil || !used {
			t.Fatalf("LinkUsed: %v, %v", used, err)
		}
		if err := f.store.ReleaseLink(ctx, id, "lnk_"+tag); err != nil {
			t.Fatalf("ReleaseLink: %v", err)
		}
	}
	if _, err := f.store.Funnel(ctx, now.Add(-48*time.Hour), now.Add(time.Hour)); err != nil {
		t.Fatalf("Funnel: %v", err)
	}
	lease := "cluster-" + tag
	if ok, err := f.store.AcquireLease(ctx, lease, "tok", time.Minute); err != nil || !ok {
		t.Fatalf("AcquireLease: %v, %v", ok, err)
	}
	if err := f.store.RenewLease(ctx, lease, "tok", time.Minute); err != nil {
		t.Fatalf("RenewLease: %v", err)
	}
	if err := f.store.SaveCheckpoint(ctx, lease, "tok", map[string]string{"at": "1"}); err != nil {
		t.Fatalf("SaveCheckpoint: %v", err)
	}
	if cp, err := f.store.Checkpoint(ctx, lease); err != nil || cp["at"] != "1" {
		t.Fatalf("Checkpoint: %v, %v", cp, err)
	}
	if err := f.store.ReleaseLease(ctx, lease, "tok"); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	var cursor OpenCursor
	open := 0
	for range 1000 {
		page, next, done, err := f.store.OpenInquiries(ctx, cursor, 50)
		if err != nil {
			t.Fatalf("OpenInquiries: %v", err)
		}
		open += len(page)
		if done {
			break
		}
		cursor = next
	}
	if open < len(ids) {
		t.Fatalf("OpenInquiries walked %d open inquiries, want at least %d", open, len(ids))
	}
	if err := f.store.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	final := make([]*persona.Event, 0, len(ids))
	for i, id := range ids {
		if i%2 == 0 {
			final = append(final, ev("evt_f"+tag, "inquiry.completed", id, t0.Add(2*time.Minute), base(persona.StatusCompleted, "itmpl_std")))
		} else {
			at := f.clock.Now()
			final = append(final, ev("evt_f"+tag, "inquiry.expired", id, at, &snap{Status: persona.StatusExpired, ExpiredAt: at}))
		}
	}
	if _, err := f.store.ApplyBatch(ctx, final); err != nil {
		t.Fatalf("ApplyBatch (final): %v", err)
	}
	// Win-backs of the inquiries that just expired.
	f.clock.Add(2 * time.Minute) // past the walk's skew (the clock stays ahead: a later walk starts here)
	wins, err := f.store.ClaimWinbacks(ctx, 72*time.Hour, time.Minute, 1000)
	if err != nil {
		t.Fatalf("ClaimWinbacks: %v", err)
	}
	if len(wins) < len(ids)/2 {
		t.Fatalf("ClaimWinbacks: %d claims, want the %d expired inquiries", len(wins), len(ids)/2)
	}
	for i, w := range wins {
		if i%2 == 0 {
			if err := f.store.WinbackIntent(ctx, w); err != nil {
				t.Fatalf("WinbackIntent: %v", err)
			}
		}
		if err := f.store.SettleWinback(ctx, w, "sent", time.Time{}); err != nil {
			t.Fatalf("SettleWinback: %v", err)
		}
	}
	f.clock.Add(2 * time.Hour)
	if _, err := f.store.Purge(ctx, 1000); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	f.clock.Add(-2 * time.Hour)
}

// reshardUnderLoad moves slots between the primaries with redis-cli --cluster reshard while
// writers apply events, retrying whole-batch failures as the worker does; no event may fail
// on its own and every event must be in its record afterwards.
func reshardUnderLoad(t *testing.T, cluster *clustertest.RedisCluster, f *fixture) {
	ctx := context.Background()
	primaries, err := cluster.Primaries(ctx)
	if err != nil || len(primaries) < 2 {
		t.Fatalf("primaries: %v", err)
	}
	owners := func() map[int]string {
		m := map[int]string{}
		for shard := range f.store.cfg.Shards {
			p, err := cluster.PrimaryOf(ctx, f.store.keys.records(shard))
			if err != nil {
				t.Fatal(err)
			}
			m[shard] = p.Addr()
		}
		return m
	}
	before := owners()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var applied, batchFailures atomic.Int64
	var mu sync.Mutex
	last := map[string]int{} // inquiry -> last event number applied
	for w := range 4 {
		wg.Go(func() {
			for n := 0; n < 10_000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var events []*persona.Event
				for i := range 32 {
					id := fmt.Sprintf("inq_rs%d_%d", w, i)
					events = append(events, ev(fmt.Sprintf("evt_rs%d", n), "inquiry.started", id,
						t0.Add(time.Duration(n)*time.Second), base(persona.StatusPending, "itmpl_std")))
				}
				for attempt := 0; ; attempt++ {
					results, err := f.store.ApplyBatch(ctx, events)
					if err != nil {
						batchFailures.Add(1)
						if attempt > 200 {
							t.Errorf("batch still failing after %d attempts: %v", attempt, err)
							return
						}
						time.Sleep(50 * time.Millisecond)
						continue
					}
					for i, r := range results {
						if r.Err != nil {
							t.Errorf("event %s of %s failed on its own during resharding: %v", events[i].ID, events[i].InquiryID, r.Err)
						}
					}
					break
				}
				applied.Add(int64(len(events)))
				mu.Lock()
				for _, e := range events {
					last[e.InquiryID] = n
				}
				mu.Unlock()
			}
		})
	}
	// Move a third of each of two primaries' slots, one after the other.
	for _, move := range [][2]int{{0, 1}, {1, 2}} {
		before := applied.Load()
		if err := cluster.Reshard(ctx, primaries[move[0]], primaries[move[1]], 1500); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
		waitUntil(t, "events applied after the reshard", func() bool { return applied.Load() > before+256 })
	}
	close(stop)
	wg.Wait()
	t.Logf("%d events applied while resharding, %d whole-batch failures retried", applied.Load(), batchFailures.Load())
	if err := cluster.WaitHealthy(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for shard, addr := range owners() {
		if before[shard] != addr {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("the resharding moved none of the store's shards")
	}
	t.Logf("%d of %d shards moved to another primary", moved, f.store.cfg.Shards)
	for id, n := range last {
		inq := f.inquiry(t, id)
		if inq.LastEventID != fmt.Sprintf("evt_rs%d", n) {
			t.Errorf("%s: last event %s, want evt_rs%d", id, inq.LastEventID, n)
		}
	}
}

// waitUntil polls cond for up to a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
