package state

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
)

// TestAllowMintSlidingWindow checks the per-inquiry mint limit: limit mints per sliding
// window, a Retry-After that says when the oldest leaves it, independent inquiries, and
// UndoMint giving a slot back.
func TestAllowMintSlidingWindow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const limit, window = 3, time.Hour
	allow := func(id string) Allowance {
		t.Helper()
		a, err := f.store.AllowMint(ctx, id, limit, window)
		if err != nil {
			t.Fatalf("AllowMint(%s): %v", id, err)
		}
		return a
	}
	for i := range limit {
		a := allow("inq_a")
		if !a.Allowed || a.Remaining != limit-1-i || a.RetryAfter != 0 {
			t.Fatalf("mint %d: %+v, want allowed with %d remaining", i+1, a, limit-1-i)
		}
		f.clock.Add(10 * time.Minute)
	}
	// Mints at +0, +10m, +20m; now +30m: the first leaves the window at +60m.
	denied := allow("inq_a")
	if denied.Allowed || denied.RetryAfter != 30*time.Minute {
		t.Fatalf("mint over the limit: %+v, want denied with RetryAfter 30m", denied)
	}
	if a := allow("inq_b"); !a.Allowed {
		t.Fatalf("another inquiry is limited too: %+v", a)
	}
	f.clock.Add(30 * time.Minute)
	last := allow("inq_a")
	if !last.Allowed || last.Remaining != 0 {
		t.Fatalf("mint after the oldest left the window: %+v", last)
	}
	if a := allow("inq_a"); a.Allowed {
		t.Fatalf("window full again but allowed: %+v", a)
	}
	if err := f.store.UndoMint(ctx, "inq_a", last); err != nil {
		t.Fatal(err)
	}
	if err := f.store.UndoMint(ctx, "inq_a", denied); err != nil { // not allowed: nothing to undo
		t.Fatal(err)
	}
	if a := allow("inq_a"); !a.Allowed {
		t.Fatalf("UndoMint did not give the slot back: %+v", a)
	}
	ttl, err := f.client.PTTL(ctx, f.store.keys.mintLog("inq_a")).Result()
	if err != nil || ttl <= 0 || ttl > window {
		t.Errorf("mint log TTL %v (%v), want within (0, %v]", ttl, err, window)
	}
}

// TestAllowAPIRequestConcurrent checks that concurrent callers (replicas) never get more
// than limit grants in a window between them.
func TestAllowAPIRequestConcurrent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const limit, callers, calls = 20, 4, 15
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range calls {
				a, err := f.store.AllowAPIRequest(ctx, "acme", limit, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if a.Allowed {
					mu.Lock()
					allowed++
					mu.Unlock()
				} else if a.RetryAfter <= 0 || a.RetryAfter > time.Minute {
					t.Errorf("denied with RetryAfter %v", a.RetryAfter)
				}
			}
		})
	}
	wg.Wait()
	if allowed != limit {
		t.Errorf("%d requests allowed, want exactly %d", allowed, limit)
	}
	a, err := f.store.AllowAPIRequest(ctx, "other", limit, time.Minute)
	if err != nil || !a.Allowed {
		t.Errorf("another key: %+v, %v; want allowed", a, err)
	}
}

// TestLimiterKeysShareSlots checks the key schema of the limiters: a mint log sits in its
// inquiry's record slot, and every limiter script call touches one slot (the fixture's slot
// checker fails the test otherwise).
func TestLimiterKeysShareSlots(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Shards = 16 })
	ctx := context.Background()
	for i := range 32 {
		id := fmt.Sprintf("inq_slot%d", i)
		if keySlot(f.store.keys.mintLog(id)) != keySlot(f.store.keys.recordsOf(id)) {
			t.Errorf("mint log of %s is not in its record's slot", id)
		}
		if _, err := f.store.AllowMint(ctx, id, 1, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.AllowAPIRequest(ctx, fmt.Sprintf("key%d", i), 1, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.slots.calls.Load(); got < 64 {
		t.Errorf("slot checker saw %d script calls, want 64", got)
	}
}

// TestAllowErrors checks argument validation and Redis failure: nothing is allowed.
func TestAllowErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		limit  int
		window time.Duration
	}{
		{"zero limit", 0, time.Minute},
		{"negative limit", -1, time.Minute},
		{"sub-millisecond window", 1, time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a, err := f.store.AllowMint(ctx, "inq_x", tc.limit, tc.window); err == nil || a.Allowed {
				t.Errorf("AllowMint = %+v, %v; want an error", a, err)
			}
			if a, err := f.store.AllowAPIRequest(ctx, "k", tc.limit, tc.window); err == nil || a.Allowed {
				t.Errorf("AllowAPIRequest = %+v, %v; want an error", a, err)
			}
		})
	}
	t.Run("redis down", func(t *testing.T) {
		srv := testenv.StartRedis(t)
		client := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { client.Close() })
		down := fixtureOn(t, client, testenv.Prefix(t))
		srv.Stop()
		if a, err := down.store.AllowMint(ctx, "inq_x", 5, time.Hour); err == nil || a.Allowed {
			t.Errorf("AllowMint with Redis down = %+v, %v; want an error", a, err)
		}
		if a, err := down.store.AllowAPIRequest(ctx, "k", 5, time.Hour); err == nil || a.Allowed {
			t.Errorf("AllowAPIRequest with Redis down = %+v, %v; want an error", a, err)
		}
	})
}
