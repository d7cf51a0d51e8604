package state

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resumer/resumer/persona"
)

// funnelTotals sums the funnel counts of the fixture's today by "group/stage/step".
func (f *fixture) funnelTotals(t testing.TB) map[string]int64 {
	t.Helper()
	d, err := f.store.Funnel(context.Background(), f.clock.Now().Add(-48*time.Hour), f.clock.Now().Add(48*time.Hour))
	if err != nil {
		t.Fatalf("Funnel: %v", err)
	}
	out := map[string]int64{}
	for _, c := range d.Counts {
		out[c.Attribution.Group+"/"+c.Attribution.Stage+"/"+c.Step] += c.Count
	}
	return out
}

func wantTotals(t *testing.T, got, want map[string]int64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("funnel %s = %d, want %d", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("funnel %s = %d, want none", k, v)
		}
	}
}

// TestFunnelSteps follows one reminded inquiry through the funnel: each step counts once per
// reminder (duplicates, repeated views and further session starts change nothing), a newer
// reminder takes over the attribution, events before the reminder are not its doing, the
// completion is timed from the last reminder, and a final status ends the attribution.
func TestFunnelSteps(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, func(c *Config) { c.Registerer = reg })
	ctx := context.Background()
	const id = "inq_funnel"
	x := t0.Add(24 * time.Hour)
	attr := Attribution{Group: GroupReminded, Stage: "6h", Channel: "email", LinkMode: "redirect"}

	f.apply(t, ev("evt_1", "inquiry.started", id, t0, pendingUntil(x)))
	// No reminder yet: a view counts nothing.
	if n, err := f.store.MarkLink(ctx, id, LinkOpened); err != nil || n {
		t.Fatalf("MarkLink before any reminder = %v, %v", n, err)
	}
	f.clock.Set(x.Add(-6 * time.Hour))
	c := f.claimOne(t, x.Add(-6*time.Hour), id)
	c.Attribution = attr
	if err := f.store.CompleteReminder(ctx, c, "6h", nil); err != nil {
		t.Fatal(err)
	}
	// An event from before the reminder (delivered late) is not the reminder's doing.
	f.apply(t, ev("evt_2", "inquiry-session.started", id, t0.Add(time.Hour), nil))
	for range 2 {
		if _, err := f.store.MarkLink(ctx, id, LinkOpened); err != nil {
			t.Fatal(err)
		}
	}
	wantTotals(t, f.funnelTotals(t), map[string]int64{
		"reminded/6h/reminder": 1, "reminded/6h/inquiry": 1, "reminded/6h/opened": 1,
	})

	// The 1h reminder takes over: the inquiry is not counted again, its steps start afresh.
	f.clock.Set(x.Add(-time.Hour))
	c = f.claimOne(t, x.Add(-time.Hour), id)
	attr.Stage = "1h"
	c.Attribution = attr
	if err := f.store.CompleteReminder(ctx, c, "1h", nil); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(10 * time.Minute)
	if _, err := f.store.MarkLink(ctx, id, LinkPressed); err != nil {
		t.Fatal(err)
	}
	after := x.Add(-time.Hour + 20*time.Minute)
	f.apply(t, ev("evt_3", "inquiry-session.started", id, after, nil))
	f.apply(t, ev("evt_3", "inquiry-session.started", id, after, nil)) // duplicate
	f.apply(t, ev("evt_4", "inquiry-session.started", id, after.Add(time.Minute), nil))
	done := after.Add(20 * time.Minute) // 40 minutes after the 1h reminder
	f.apply(t, ev("evt_5", "inquiry.completed", id, done, with(pendingUntil(x), func(s *snap) { s.Status = persona.StatusCompleted })))
	f.apply(t, ev("evt_6", "inquiry.approved", id, done.Add(time.Minute), with(pendingUntil(x), func(s *snap) { s.Status = persona.StatusApproved })))
	// Final: the attribution is gone, so a late replay with a new id counts nothing.
	f.apply(t, ev("evt_7", "inquiry.declined", id, done.Add(2*time.Minute), with(pendingUntil(x), func(s *snap) { s.Status = persona.StatusDeclined })))
	if _, ok := f.rawRecord(t, id)[fieldFunnel]; ok {
		t.Error("final record still has its funnel attribution")
	}
	wantTotals(t, f.funnelTotals(t), map[string]int64{
		"reminded/6h/reminder": 1, "reminded/6h/inquiry": 1, "reminded/6h/opened": 1,
		"reminded/1h/reminder": 1, "reminded/1h/opened": 1, "reminded/1h/pressed": 1,
		"reminded/1h/resumed": 1, "reminded/1h/completed": 1, "reminded/1h/approved": 1,
	})
	d, err := f.store.Funnel(ctx, f.clock.Now(), f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Elapsed) != 1 || d.Elapsed[0].Attribution.Stage != "1h" || d.Elapsed[0].Buckets[3] != 1 {
		t.Errorf("elapsed = %+v, want one completion in the 30m..1h bucket of 1h", d.Elapsed)
	}
	if got := testutil.ToFloat64(f.store.funnel.steps.WithLabelValues(GroupReminded, "1h", "email", "redirect", StepCompleted)); got != 1 {
		t.Errorf("resumer_funnel_total{completed,1h} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.store.funnel.steps.WithLabelValues(GroupReminded, "6h", "email", "redirect", StepReminder)); got != 1 {
		t.Errorf("resumer_funnel_total{reminder,6h} = %v, want 1", got)
	}
	if got := testutil.CollectAndCount(f.store.funnel.elapsed); got != 1 {
		t.Errorf("completion histogram series = %d, want 1", got)
	}
}

// TestFunnelExpiredAnyway checks a held-out reminder followed by the inquiry expiring: the
// expiry is counted for the held-out group and the attribution ends; an invalid attribution
// is refused without settling.
func TestFunnelExpiredAnyway(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const id = "inq_expire"
	x := t0.Add(24 * time.Hour)
	f.apply(t, ev("evt_1", "inquiry.created", id, t0, with(base(persona.StatusCreated, "itmpl_std"), func(s *snap) { s.ExpiresAt = x })))
	f.clock.Set(x.Add(-6 * time.Hour))
	c := f.claimOne(t, x.Add(-6*time.Hour), id)
	c.Attribution = Attribution{Group: "control", Stage: "6h"}
	if err := f.store.CompleteReminder(ctx, c, "6h", nil); err == nil {
		t.Fatal("CompleteReminder with an unknown group: no error")
	}
	c.Attribution = Attribution{Group: GroupHeldOut, Stage: "6h", Channel: "email"}
	if err := f.store.CompleteReminder(ctx, c, "6h", nil); err != nil {
		t.Fatal(err)
	}
	f.apply(t, ev("evt_2", "inquiry.expired", id, x, with(base(persona.StatusExpired, "itmpl_std"), func(s *snap) { s.ExpiresAt = x })))
	wantTotals(t, f.funnelTotals(t), map[string]int64{
		"held_out/6h/reminder": 1, "held_out/6h/inquiry": 1, "held_out/6h/expired": 1,
	})
	if _, ok := f.rawRecord(t, id)[fieldFunnel]; ok {
		t.Error("expired record still has its funnel attribution")
	}
	// The bucket expires: retention after the end of its day.
	bucket, _ := f.store.funnelBucket(f.store.keys.shard(id), f.clock.Now())
	ttl, err := f.client.TTL(ctx, bucket).Result()
	if err != nil || ttl <= 0 {
		t.Errorf("TTL(%s) = %v, %v; want a positive TTL", bucket, ttl, err)
	}
}

// TestFunnelAttributionFarFromLastEvent covers the record's wider form of the attribution: a
// reminder days after the inquiry's newest event (a long expiry) does not fit the packed
// integer, and is still attributed, timed and decoded.
func TestFunnelAttributionFarFromLastEvent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const id = "inq_far"
	x := t0.Add(7 * 24 * time.Hour)
	f.apply(t, ev("evt_1", "inquiry.started", id, t0, pendingUntil(x)))
	f.clock.Set(x.Add(-6 * time.Hour))
	c := f.claimOne(t, x.Add(-6*time.Hour), id)
	c.Attribution = Attribution{Group: GroupReminded, Stage: "6h", Channel: "webhook"}
	if err := f.store.CompleteReminder(ctx, c, "6h", nil); err != nil {
		t.Fatal(err)
	}
	if got := f.inquiry(t, id).RemindersSent; len(got) != 1 {
		t.Fatalf("RemindersSent = %v", got)
	}
	done := x.Add(-6*time.Hour + 3*time.Hour)
	f.apply(t, ev("evt_2", "inquiry.completed", id, done, with(pendingUntil(x), func(s *snap) { s.Status = persona.StatusCompleted })))
	wantTotals(t, f.funnelTotals(t), map[string]int64{
		"reminded/6h/reminder": 1, "reminded/6h/inquiry": 1, "reminded/6h/resumed": 1, "reminded/6h/completed": 1,
	})
	d, err := f.store.Funnel(ctx, f.clock.Now(), f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Elapsed) != 1 || d.Elapsed[0].Buckets[5] != 1 {
		t.Errorf("elapsed = %+v, want one completion in the 2h..4h bucket", d.Elapsed)
	}
}
