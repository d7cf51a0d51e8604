package reconcile_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/reconcile"
	"github.com/resumer/resumer/state"
)

// limiters returns the shared Persona limiter (limit per window) and reconciliation's budget
// limiter (share of it) under prefix, as cmd/resumer builds them, without minimum spacing.
func limiters(t *testing.T, rdb redis.UniversalClient, prefix string, limit int, window time.Duration, share float64) (*state.RateLimiter, *reconcile.BudgetLimiter) {
	t.Helper()
	shared, err := state.NewRateLimiter(rdb, state.RateLimiterOptions{Prefix: prefix, Limit: limit, Window: window, MinInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	own, err := state.NewRateLimiter(rdb, state.RateLimiterOptions{Prefix: prefix, Name: "reconcile",
		Limit: int(float64(limit) * share), Window: window, MinInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return shared, &reconcile.BudgetLimiter{Budget: own, Shared: shared, Share: share}
}

// TestBudgetLimiterKeepsToItsShare: with a shared limit of 10 per second and a 30 % budget,
// seven requests cannot be granted in less than two windows, however idle the shared limit.
func TestBudgetLimiterKeepsToItsShare(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	_, budget := limiters(t, rdb, prefix, 10, time.Second, 0.3)
	start := time.Now()
	for range 7 {
		if err := budget.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// 3 grants per window: grants 4-6 wait for the first window to pass, grant 7 for the
	// second. (A lower bound: a slow machine only makes it longer.)
	if elapsed := time.Since(start); elapsed < 1900*time.Millisecond {
		t.Errorf("7 requests at 3 per second took %v, want at least 2 s", elapsed)
	}
}

// TestBudgetLimiterYieldsToOthers: when reminders and the API have used the shared window
// down to reconciliation's share, reconciliation waits until their grants leave the window,
// though its own budget is untouched.
func TestBudgetLimiterYieldsToOthers(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	shared, budget := limiters(t, rdb, prefix, 10, time.Second, 0.3)
	ctx := context.Background()
	start := time.Now()
	for range 8 { // others take 8 of 10: more than limit - share (7)
		if err := shared.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := budget.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// The others' grants were all taken after start; reconciliation may go only once two of
	// them have left the one-second window. (A lower bound: a slow machine only adds.)
	if elapsed := time.Since(start); elapsed < 950*time.Millisecond {
		t.Errorf("reconciliation took a grant %v after others began taking 8 of 10; want it to wait for their window to pass", elapsed)
	}
}

// TestPassRespectsTheBudget runs a pass through the budget limiter, as the reconcile role
// does, and counts the calls Persona received per window.
func TestPassRespectsTheBudget(t *testing.T) {
	p := newPipeline(t, personatest.Options{})
	want := map[string]persona.Status{}
	for i := range 40 {
		inq := p.sim.CreateInquiry(personatest.InquiryParams{ReferenceID: fmt.Sprintf("u-%d", i)})
		want[inq.ID] = persona.StatusCreated
	}
	p.waitDelivered(t)
	p.waitStatus(t, want)
	_, budget := limiters(t, p.rdb, p.prefix, 10, time.Second, 0.3)
	client, err := persona.NewClient(persona.ClientOptions{BaseURL: p.sim.URL(), APIKey: p.sim.APIKey(), Limiter: budget})
	if err != nil {
		t.Fatal(err)
	}
	before := len(p.sim.RequestLog())
	start := time.Now()
	report, err := p.reconciler(t, func(o *reconcile.Options) {
		o.Persona = client
		o.BatchSize = 5
	}).Pass(context.Background(), reconcile.PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	calls := p.sim.RequestLog()[before:]
	if len(calls) != report.PersonaCalls() || len(calls) != 9 { // 1 events page + 40/5 re-checks
		t.Fatalf("Persona got %d calls, report says %d; want 9", len(calls), report.PersonaCalls())
	}
	// 9 calls at 3 per second need at least two full windows after the first.
	if elapsed < 1900*time.Millisecond {
		t.Errorf("9 calls took %v, want at least 2 s at 3 per second", elapsed)
	}
	// Per window of arrivals: the limiter grants 3 per second on Redis' clock; arrivals can
	// bunch up a little under load, never to the 9 an unbudgeted pass sends at once.
	for i := range calls {
		n := 0
		for _, c := range calls[i:] {
			if c.At.Sub(calls[i].At) < time.Second {
				n++
			}
		}
		if n > 5 {
			t.Errorf("%d calls within one second from call %d, want about 3", n, i)
		}
	}
}
