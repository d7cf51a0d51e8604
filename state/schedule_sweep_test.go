package state

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// claimAll claims at now with the given per-shard limit until a call claims nothing, settles
// every claim with CompleteReminder of stage, and returns how often each inquiry was claimed.
func (f *fixture) claimAll(t *testing.T, now time.Time, limit int, stage string, between func()) map[string]int {
	t.Helper()
	ctx := context.Background()
	seen := map[string]int{}
	for range 100 {
		claims, err := f.store.ClaimDue(ctx, now, testLease, limit)
		if err != nil {
			t.Fatalf("ClaimDue: %v", err)
		}
		if len(claims) == 0 {
			return seen
		}
		if len(claims) > limit {
			t.Fatalf("ClaimDue(limit %d) returned %d claims", limit, len(claims))
		}
		for _, c := range claims {
			seen[c.InquiryID]++
			if err := f.store.CompleteReminder(ctx, c, stage, nil); err != nil {
				t.Fatalf("CompleteReminder(%s): %v", c.InquiryID, err)
			}
		}
		if between != nil {
			between()
		}
	}
	t.Fatal("ClaimDue kept returning claims")
	return nil
}

// TestSweepTies: inquiries that share one expires-at are each claimed once per stage however
// the per-shard limit cuts their run, also when the inquiry a sweep stopped at leaves the
// expiry index (the cursor then points between members).
func TestSweepTies(t *testing.T) {
	for _, leave := range []bool{false, true} {
		t.Run(fmt.Sprintf("cursor member leaves %v", leave), func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Shards = 1 })
			x := t0.Add(24 * time.Hour)
			var ids []string
			for i := range 25 {
				id := fmt.Sprintf("inq_t%02d", i)
				ids = append(ids, id)
				f.apply(t, ev("evt_1", "inquiry.started", id, t0, pendingUntil(x)))
			}
			n := 0
			between := func() {
				if !leave {
					return
				}
				// The sweep stopped at the last inquiry it claimed: complete that inquiry at
				// Persona, so it leaves the expiry index.
				cur, err := f.client.HGet(context.Background(), f.store.keys.cursors(0), "6h").Result()
				if err != nil {
					t.Fatal(err)
				}
				_, handle, _ := strings.Cut(cur, ":")
				id := ids[slices.IndexFunc(ids, func(id string) bool { return handleOf(id) == handle })]
				n++
				f.apply(t, ev(fmt.Sprintf("evt_done%d", n), "inquiry.completed", id, t0.Add(time.Hour), with(pendingUntil(x), func(s *snap) { s.Status = persona.StatusCompleted })))
			}
			seen := f.claimAll(t, x.Add(-6*time.Hour), 4, "6h", between)
			if len(seen) != len(ids) {
				t.Errorf("6h: %d inquiries claimed, want %d", len(seen), len(ids))
			}
			for id, k := range seen {
				if k != 1 {
					t.Errorf("6h: %s claimed %d times", id, k)
				}
			}
			if n, err := f.store.DueBacklog(context.Background(), x.Add(-6*time.Hour)); err != nil || n != 0 {
				t.Errorf("DueBacklog after the 6h sweep = %d, %v; want 0", n, err)
			}
			// The 1h stage follows for those still pending.
			seen = f.claimAll(t, x.Add(-time.Hour), 3, "1h", nil)
			for _, id := range ids {
				want := 1
				if f.inquiry(t, id).Status != persona.StatusPending {
					want = 0
				}
				if seen[id] != want {
					t.Errorf("1h: %s claimed %d times, want %d", id, seen[id], want)
				}
			}
		})
	}
}

// TestSweepPassesDoneInquiries: a sweep passes inquiries that need nothing from its stage
// (done, dropped) and claims those behind them; DueBacklog counts what the next sweep reads.
func TestSweepPassesDoneInquiries(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Shards = 1 })
	ctx := context.Background()
	x := t0.Add(24 * time.Hour)
	for i, at := range []time.Duration{0, time.Minute, 2 * time.Minute, 2 * time.Minute} {
		f.apply(t, ev("evt_1", "inquiry.started", fmt.Sprintf("inq_%d", i), t0, pendingUntil(x.Add(at))))
	}
	// Both stages are due for all four: one claim each, by the 6h sweep; the 1h sweep passes
	// them (leased) and stops at inq_3.
	now := x.Add(2*time.Minute - time.Hour)
	if n, err := f.store.DueBacklog(ctx, now); err != nil || n != 4 {
		t.Fatalf("DueBacklog = %d, %v; want 4", n, err)
	}
	claims, err := f.store.ClaimDue(ctx, now, testLease, 100)
	if err != nil || len(claims) != 4 {
		t.Fatalf("ClaimDue = %d claims, %v; want 4", len(claims), err)
	}
	for _, c := range claims {
		switch c.InquiryID {
		case "inq_0": // sent 1h, skipped 6h: done with both
			err = f.store.CompleteReminder(ctx, c, "1h", []string{"6h"})
		case "inq_1":
			err = f.store.DropReminders(ctx, c, "test")
		case "inq_2": // only 6h done: 1h is still due, and its sweep has passed it (stopping at
			// inq_3, which expires at the same time): queued
			err = f.store.CompleteReminder(ctx, c, "6h", nil)
		default: // lease left to run out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	f.wantDue(t, "inq_0", time.Time{})
	f.wantDue(t, "inq_1", time.Time{})
	f.wantDue(t, "inq_2", x.Add(2*time.Minute-time.Hour))
	later := now.Add(testLease)
	f.passLease(testLease)
	claims, err = f.store.ClaimDue(ctx, later, testLease, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range claims {
		got = append(got, fmt.Sprintf("%s:%v", c.InquiryID, c.TookOver))
	}
	slices.Sort(got)
	if want := []string{"inq_2:false", "inq_3:true"}; !slices.Equal(got, want) {
		t.Errorf("claims after the lease = %v, want %v", got, want)
	}
}

// TestDueBacklogCursorLeft: DueBacklog counts the inquiries after a sweep's cursor exactly,
// also when the inquiry the cursor names has left the expiry index.
func TestDueBacklogCursorLeft(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Shards = 1 })
	ctx := context.Background()
	x := t0.Add(24 * time.Hour)
	for i := range 10 {
		f.apply(t, ev("evt_1", "inquiry.started", fmt.Sprintf("inq_%d", i), t0, pendingUntil(x)))
	}
	now := x.Add(-6 * time.Hour)
	claims, err := f.store.ClaimDue(ctx, now, testLease, 4)
	if err != nil || len(claims) != 4 {
		t.Fatalf("ClaimDue = %d claims, %v; want 4", len(claims), err)
	}
	if n, err := f.store.DueBacklog(ctx, now); err != nil || n != 6 {
		t.Errorf("DueBacklog = %d, %v; want 6", n, err)
	}
	f.apply(t, ev("evt_2", "inquiry.completed", "inq_3", t0.Add(time.Hour), with(pendingUntil(x), func(s *snap) { s.Status = persona.StatusCompleted })))
	if n, err := f.store.DueBacklog(ctx, now); err != nil || n != 6 {
		t.Errorf("DueBacklog after the cursor's inquiry left = %d, %v; want 6", n, err)
	}
	claims, err = f.store.ClaimDue(ctx, now, testLease, 100)
	if err != nil || len(claims) != 6 {
		t.Errorf("ClaimDue = %d claims, %v; want the other 6", len(claims), err)
	}
}

// TestSweepStageAddedLater: a shard's first sweep of each stage starts at the beginning of the
// expiry index; a stage added to the configuration later applies to the inquiries whose stage
// time is still ahead, and the others keep their next stage.
func TestSweepStageAddedLater(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Shards = 1; c.RemindBefore = []time.Duration{time.Hour} })
	ctx := context.Background()
	x := t0.Add(24 * time.Hour)
	f.apply(t, ev("evt_1", "inquiry.started", "inq_first", t0, pendingUntil(x.Add(-10*time.Hour))))
	if claims, err := f.store.ClaimDue(ctx, x.Add(-12*time.Hour), testLease, 10); err != nil || len(claims) != 0 {
		t.Fatalf("ClaimDue at x-12h = %d claims, %v; want none", len(claims), err)
	}

	f2 := fixtureOn(t, f.client, f.prefix, func(c *Config) { c.Shards = 1; c.RemindBefore = []time.Duration{3 * time.Hour, time.Hour} })
	f2.apply(t, ev("evt_1", "inquiry.started", "inq_a", t0, pendingUntil(x)))
	f2.apply(t, ev("evt_1", "inquiry.started", "inq_b", t0, pendingUntil(x.Add(2*time.Hour))))
	claimed := func(at time.Time) []string {
		t.Helper()
		claims, err := f2.store.ClaimDue(ctx, at, testLease, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range claims {
			ids = append(ids, c.InquiryID)
			if err := f2.store.CompleteReminder(ctx, c, "", []string{"3h", "1h"}); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(ids)
		return ids
	}
	// At x-2h the new 3h stage is past for inq_a (x-3h): not sent; inq_first's 1h stage is
	// found by the 1h sweep, which started from the beginning.
	if got, want := claimed(x.Add(-2*time.Hour)), []string{"inq_first"}; !slices.Equal(got, want) {
		t.Errorf("ClaimDue at x-2h claimed %v, want %v", got, want)
	}
	// At x-1h inq_a is due for its 1h stage, inq_b for its 3h stage.
	if got, want := claimed(x.Add(-time.Hour)), []string{"inq_a", "inq_b"}; !slices.Equal(got, want) {
		t.Errorf("ClaimDue at x-1h claimed %v, want %v", got, want)
	}
}

// TestClaimDuePurges: records whose retention is over are purged by ClaimDue too (by the
// store's clock), so they go even when their shard sees no events.
func TestClaimDuePurges(t *testing.T) {
	const retention = 24 * time.Hour
	f := newFixture(t, func(c *Config) { c.Shards = 1; c.Retention = retention })
	ctx := context.Background()
	x := t0.Add(24 * time.Hour)
	f.apply(t, ev("evt_1", "inquiry.started", "inq_gone", t0, pendingUntil(x)))
	f.apply(t, ev("evt_1", "inquiry.completed", "inq_done", t0, base(persona.StatusCompleted, "itmpl_std")))
	f.apply(t, ev("evt_1", "inquiry.started", "inq_kept", t0, pendingUntil(x.Add(48*time.Hour))))
	// A claim time far ahead of the store's clock purges nothing.
	if _, err := f.store.ClaimDue(ctx, x.Add(10*retention), testLease, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Inquiry(ctx, "inq_gone"); err != nil {
		t.Fatalf("purged by the claim's clock: %v", err)
	}
	f.clock.Set(x.Add(retention))
	if _, err := f.store.ClaimDue(ctx, f.clock.Now(), testLease, 10); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"inq_gone", "inq_done"} {
		if _, err := f.store.Inquiry(ctx, id); err == nil {
			t.Errorf("%s not purged", id)
		}
	}
	if got, want := f.counts(t), map[persona.Status]int64{persona.StatusPending: 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("CountByStatus = %v, want %v", got, want)
	}
}
