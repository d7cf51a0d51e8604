package state_test

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/state"
)

// TestRateLimitSharedAcrossReplicas runs three clients, each with its own limiter instance
// and Redis connection (three replicas), against one simulated Persona (PERSONA.md §7: one
// fixed-window limit per environment). The limiter allows 16 per sliding second, below the
// simulator's 20 per fixed second, as production runs 240 against Persona's 300.
func TestRateLimitSharedAcrossReplicas(t *testing.T) {
	const (
		limit    = 16
		window   = time.Second
		replicas = 3
		calls    = 20
	)
	sim := personatest.NewServer(t, personatest.Options{RateLimit: 20, RateWindow: window})
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	_, prefix := testenv.Redis(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, replicas*calls)
	start := time.Now()
	for range replicas {
		rdb, _ := testenv.Redis(t) // a connection of its own; the prefix is shared
		lim, err := state.NewRateLimiter(rdb, state.RateLimiterOptions{Prefix: prefix, Limit: limit, Window: window})
		if err != nil {
			t.Fatal(err)
		}
		c, err := persona.NewClient(persona.ClientOptions{BaseURL: sim.URL(), APIKey: sim.APIKey(), Limiter: lim,
			InitialBackoff: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range calls {
				if _, err := c.GetInquiry(ctx, inq.ID); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Errorf("GetInquiry: %v", err)
	}
	log := sim.RequestLog()
	if len(log) != replicas*calls {
		t.Fatalf("%d requests at the simulator, want %d", len(log), replicas*calls)
	}
	var at []time.Time
	for _, r := range log {
		if r.Status == http.StatusTooManyRequests {
			t.Errorf("the simulator answered 429 at %s", r.At.Sub(start))
		}
		at = append(at, r.At)
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	// The busiest second at the simulator, by arrival time. A grant and its arrival differ by
	// the loopback latency plus any stall of a loaded test machine, so three requests of slack
	// are allowed for jitter: still below the simulator's 20, the limit that matters.
	busiest := 0
	for i, j := 0, 0; i < len(at); i++ {
		for at[i].Sub(at[j]) >= window {
			j++
		}
		busiest = max(busiest, i-j+1)
	}
	if busiest > limit+3 {
		t.Errorf("%d requests within one %s at the simulator, limiter allows %d", busiest, window, limit)
	}
	// 60 requests at 16 per second cannot finish in less than 3 full windows.
	if min := time.Duration(replicas*calls/limit-1) * window; elapsed < min {
		t.Errorf("60 requests took %s, faster than the limit allows (%s)", elapsed, min)
	}
	t.Logf("%d requests by %d replicas in %s; busiest second %d (limit %d)", len(log), replicas, elapsed.Round(time.Millisecond), busiest, limit)
}

// TestRateLimitObservePacesEveryReplica: once Persona reports less than 15 % remaining
// (PERSONA.md §7), the remaining budget is spread over the reset time for all replicas.
func TestRateLimitObservePacesEveryReplica(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	a, err := state.NewRateLimiter(rdb, state.RateLimiterOptions{Prefix: prefix, Limit: 1000, Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := state.NewRateLimiter(rdb, state.RateLimiterOptions{Prefix: prefix, Limit: 1000, Window: time.Second})
	ctx := context.Background()

	// The times are Redis's (TIME in the scripts), so no clock can be injected: the pace is
	// made long (3 s) so that a loaded machine's stalls (up to ~2 s) cannot blur the
	// difference between a paced and an unpaced grant.
	const reset, pace = 6 * time.Second, 3 * time.Second
	// 20 of 100 remaining is above the threshold: nothing changes.
	a.Observe(ctx, 20, 100, reset)
	elapsed := timed(t, func() error { return a.Wait(ctx) }, func() error { return b.Wait(ctx) })
	if elapsed > pace-time.Second {
		t.Fatalf("two grants took %s with no pressure", elapsed)
	}
	// 1 of 100 remaining, 6s to reset: one request every 3s, on both replicas.
	a.Observe(ctx, 1, 100, reset)
	elapsed = timed(t, func() error { return b.Wait(ctx) }, func() error { return a.Wait(ctx) })
	if elapsed < pace-500*time.Millisecond || elapsed > 2*pace+1500*time.Millisecond {
		t.Errorf("paced grants %s apart, want about %s", elapsed, pace)
	}
	// The pace ends with Persona's window.
	time.Sleep(reset - elapsed + 500*time.Millisecond)
	elapsed = timed(t, func() error { return a.Wait(ctx) }, func() error { return b.Wait(ctx) })
	if elapsed > pace-time.Second {
		t.Errorf("grants still paced (%s) after the reset", elapsed)
	}
}

func timed(t *testing.T, fns ...func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for _, fn := range fns {
		if err := fn(); err != nil {
			t.Fatal(err)
		}
	}
	return time.Since(start)
}

func TestRateLimitWaitHonoursContext(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	lim, err := state.NewRateLimiter(rdb, state.RateLimiterOptions{Prefix: prefix, Limit: 1, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := lim.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := lim.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait over the limit = %v, want context.DeadlineExceeded", err)
	}
	// Over the limit Wait would take a minute: any bound well under it proves the context
	// is honoured; this one leaves room for a loaded machine.
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Wait returned %s after its context ended", d)
	}
}

func TestRateLimitRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer rdb.Close()
	lim, err := state.NewRateLimiter(rdb, state.RateLimiterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = lim.Wait(context.Background())
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Wait without Redis = %v, want a Redis error", err)
	}
	lim.Observe(context.Background(), 0, 300, time.Second) // logs, never panics or blocks
}

func TestRateLimitOptions(t *testing.T) {
	rdb, _ := testenv.Redis(t)
	for _, opts := range []state.RateLimiterOptions{{Limit: -1}, {Window: -time.Second}, {Threshold: 1}, {Window: time.Microsecond}} {
		if _, err := state.NewRateLimiter(rdb, opts); err == nil {
			t.Errorf("NewRateLimiter(%+v) accepted", opts)
		}
	}
	if _, err := state.NewRateLimiter(nil, state.RateLimiterOptions{}); err == nil {
		t.Error("nil client accepted")
	}
}
