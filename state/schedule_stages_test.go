package state

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// claimIDs claims due inquiries on f at now and returns their ids, sorted.
func claimIDs(t *testing.T, f *fixture, now time.Time) ([]string, []Claim) {
	t.Helper()
	claims, err := f.store.ClaimDue(context.Background(), now, testLease, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range claims {
		ids = append(ids, c.InquiryID)
	}
	slices.Sort(ids)
	return ids, claims
}

// TestStageRemovedAndAddedBack: a stage taken out of the configuration for hours and put back
// does not resume from its old cursor: the inquiries whose stage time passed meanwhile are
// not claimed for it, and the notifier is told it does not apply to them.
func TestStageRemovedAndAddedBack(t *testing.T) {
	ctx := context.Background()
	three := func(c *Config) {
		c.Shards = 1
		c.RemindBefore = []time.Duration{6 * time.Hour, 3 * time.Hour, time.Hour}
	}
	all := newFixture(t, three)
	two := fixtureOn(t, all.client, all.prefix, func(c *Config) {
		c.Shards = 1
		c.RemindBefore = []time.Duration{6 * time.Hour, time.Hour}
	})
	x := t0.Add(24 * time.Hour)
	all.apply(t, ev("evt_1", "inquiry.started", "inq_a", t0, pendingUntil(x)))
	if ids, _ := claimIDs(t, all, x.Add(-10*time.Hour)); len(ids) != 0 {
		t.Fatalf("claims at x-10h = %v, want none", ids)
	}
	// The 3h stage is removed: replicas run without it for two hours (on Redis's clock).
	two.passLease(2 * time.Hour)
	ids, claims := claimIDs(t, two, x.Add(-6*time.Hour))
	if !slices.Equal(ids, []string{"inq_a"}) {
		t.Fatalf("claims at x-6h = %v, want inq_a", ids)
	}
	if err := two.store.CompleteReminder(ctx, claims[0], "6h", nil); err != nil {
		t.Fatal(err)
	}
	// Added back at x-2.5h: inq_a's 3h time (x-3h) has passed; it is not claimed for it.
	all.passLease(2 * time.Hour)
	if ids, _ := claimIDs(t, all, x.Add(-150*time.Minute)); len(ids) != 0 {
		t.Fatalf("claims after the 3h stage came back = %v, want none (its old cursor was left behind)", ids)
	}
	ids, claims = claimIDs(t, all, x.Add(-time.Hour))
	if !slices.Equal(ids, []string{"inq_a"}) {
		t.Fatalf("claims at x-1h = %v, want inq_a", ids)
	}
	c := claims[0]
	if c.StageApplies("3h", x.Add(-3*time.Hour)) || !c.StageApplies("1h", x.Add(-time.Hour)) {
		t.Errorf("StagesAdded = %v: the re-added 3h stage must not apply to a due time before it", c.StagesAdded)
	}
}

// TestStageListsDiffer: during a rolling deploy one replica has a 3h stage the other lacks.
// The replica without it neither claims an inquiry queued for it nor erases its queue entry
// (claiming, or applying an event with its own stage list), and the replica with it sends it.
func TestStageListsDiffer(t *testing.T) {
	ctx := context.Background()
	withThree := newFixture(t, func(c *Config) {
		c.Shards = 1
		c.RemindBefore = []time.Duration{6 * time.Hour, 3 * time.Hour, time.Hour}
	})
	without := fixtureOn(t, withThree.client, withThree.prefix, func(c *Config) {
		c.Shards = 1
		c.RemindBefore = []time.Duration{6 * time.Hour, time.Hour}
	})
	x := t0.Add(24 * time.Hour)
	withThree.apply(t, ev("evt_1", "inquiry.started", "inq_b", t0, pendingUntil(x)))
	ids, claims := claimIDs(t, withThree, x.Add(-6*time.Hour))
	if !slices.Equal(ids, []string{"inq_b"}) {
		t.Fatalf("claims at x-6h = %v", ids)
	}
	// While inq_b is leased for its 6h stage, the 3h sweep passes it; settling the 6h stage
	// then queues it for 3h.
	if ids, _ := claimIDs(t, withThree, x.Add(-170*time.Minute)); len(ids) != 0 {
		t.Fatalf("claims while leased = %v, want none", ids)
	}
	if err := withThree.store.CompleteReminder(ctx, claims[0], "6h", nil); err != nil {
		t.Fatal(err)
	}
	withThree.wantDue(t, "inq_b", x.Add(-3*time.Hour))

	if ids, _ := claimIDs(t, without, x.Add(-160*time.Minute)); len(ids) != 0 {
		t.Fatalf("the replica without the 3h stage claimed %v", ids)
	}
	withThree.wantDue(t, "inq_b", x.Add(-3*time.Hour))
	// Persona shortens the expiry by a minute (the 3h sweep has passed the new time too).
	x2 := x.Add(-time.Minute)
	without.apply(t, ev("evt_2", "inquiry.transitioned", "inq_b", t0.Add(time.Hour), pendingUntil(x2)))
	if v, ok := withThree.score(t, withThree.store.keys.queue(0), "inq_b"); !ok || time.UnixMilli(int64(v)).UTC() != x2.Add(-3*time.Hour) {
		t.Fatalf("after an event applied with the other stage list, inq_b queued at %v (%v), want %v", time.UnixMilli(int64(v)).UTC(), ok, x2.Add(-3*time.Hour))
	}

	ids, claims = claimIDs(t, withThree, x.Add(-150*time.Minute))
	if !slices.Equal(ids, []string{"inq_b"}) {
		t.Fatalf("claims of the replica with the 3h stage = %v, want inq_b", ids)
	}
	if err := withThree.store.CompleteReminder(ctx, claims[0], "3h", nil); err != nil {
		t.Fatal(err)
	}
	if got := withThree.inquiry(t, "inq_b").RemindersSent; !slices.Equal(got, []string{"6h", "3h"}) {
		t.Errorf("RemindersSent = %v, want [6h 3h]", got)
	}
	// The 1h stage then goes to either replica.
	ids, _ = claimIDs(t, without, x2.Add(-time.Hour))
	if !slices.Equal(ids, []string{"inq_b"}) {
		t.Errorf("claims at x-1h = %v, want inq_b", ids)
	}
}

// TestLaterStageDoneFirst: an inquiry whose 1h stage is done is never claimed for its 6h
// stage, even when a sweep that started from the beginning (a shard swept for the first
// time) reaches it.
func TestLaterStageDoneFirst(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *Config) { c.Shards = 1; c.RemindBefore = []time.Duration{time.Hour} })
	x := t0.Add(24 * time.Hour)
	f.apply(t, ev("evt_1", "inquiry.started", "inq_c", t0, pendingUntil(x)))
	ids, claims := claimIDs(t, f, x.Add(-time.Hour))
	if !slices.Equal(ids, []string{"inq_c"}) {
		t.Fatalf("claims at x-1h = %v", ids)
	}
	if err := f.store.CompleteReminder(ctx, claims[0], "1h", nil); err != nil {
		t.Fatal(err)
	}
	// A 6h stage appears in a fresh shard state (say, its cursors were lost).
	if err := f.client.Del(ctx, f.store.keys.cursors(0)).Err(); err != nil {
		t.Fatal(err)
	}
	six := fixtureOn(t, f.client, f.prefix, func(c *Config) {
		c.Shards = 1
		c.RemindBefore = []time.Duration{6 * time.Hour, time.Hour}
	})
	if ids, _ := claimIDs(t, six, x.Add(-30*time.Minute)); len(ids) != 0 {
		t.Errorf("claims after the 1h stage = %v, want none: 6h would come after 1h", ids)
	}
	if got := six.inquiry(t, "inq_c"); got.Status != persona.StatusPending {
		t.Errorf("status = %s", got.Status)
	}
}
