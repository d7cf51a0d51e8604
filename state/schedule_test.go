package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
)

const testLease = 2 * time.Minute

// parked is the queue score of a leased inquiry (PARKED in lib.lua).
var parked = time.UnixMilli(9_000_000_000_000_000).UTC()

// pendingUntil is an inquiry.started payload of a pending inquiry expiring at x.
func pendingUntil(x time.Time) *snap {
	return with(base(persona.StatusPending, "itmpl_std"), func(s *snap) { s.StartedAt, s.ExpiresAt = t0, x })
}

// inDue returns when inquiry id's next reminder is due, and whether it is scheduled: its
// queue score when it is queued, else the earliest due time of its unsent stages that their
// sweeps have yet to reach (see lib.lua); a record that is not created/pending, has no
// expires-at or was dropped is not scheduled.
func (f *fixture) inDue(t testing.TB, id string) (time.Time, bool) {
	t.Helper()
	shard := f.store.keys.shard(id)
	if v, ok := f.score(t, f.store.keys.queue(shard), id); ok {
		return time.UnixMilli(int64(v)).UTC(), true
	}
	h := f.rawRecord(t, id)
	if h == nil || !persona.Status(h[fieldStatus]).Resumable() || h[fieldExpiresAt] == "" || h[fieldDropped] != "" {
		return time.Time{}, false
	}
	x, err := strconv.ParseInt(h[fieldExpiresAt], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	cursors, err := f.client.HGetAll(context.Background(), f.store.keys.cursors(shard)).Result()
	if err != nil {
		t.Fatal(err)
	}
	sent := strings.Split(h[fieldReminders], ",")
	var best int64
	found := false
	for _, d := range f.store.cfg.RemindBefore {
		name := stageName(d)
		if slices.Contains(sent, name) {
			continue
		}
		if c, ok := cursors[name]; ok && c != "" {
			score, member, _ := strings.Cut(c, ":")
			cs, err := strconv.ParseInt(score, 10, 64)
			if err != nil {
				t.Fatalf("cursor %s = %q", name, c)
			}
			if x < cs || (x == cs && handleOf(id) <= member) {
				continue // passed by the sweep, so it should have been queued
			}
		}
		if at := x - d.Milliseconds(); !found || at < best {
			best, found = at, true
		}
	}
	return time.UnixMilli(best).UTC(), found
}

// wantDue fails the test unless inquiry id is scheduled at want (zero: not scheduled).
func (f *fixture) wantDue(t testing.TB, id string, want time.Time) {
	t.Helper()
	got, ok := f.inDue(t, id)
	switch {
	case want.IsZero() && ok:
		t.Errorf("%s is scheduled at %v, want not scheduled", id, got)
	case !want.IsZero() && !ok:
		t.Errorf("%s is not scheduled, want %v", id, want)
	case !want.IsZero() && !got.Equal(want):
		t.Errorf("%s is scheduled at %v, want %v", id, got, want)
	}
}

// claimOne claims due inquiries at now and returns the claim of id, failing when it is missing.
func (f *fixture) claimOne(t testing.TB, now time.Time, id string) Claim {
	t.Helper()
	claims, err := f.store.ClaimDue(context.Background(), now, testLease, 100)
	if err != nil {
		t.Fatalf("ClaimDue: %v", err)
	}
	for _, c := range claims {
		if c.InquiryID == id {
			return c
		}
	}
	t.Fatalf("ClaimDue at %v: %s not among %d claims", now, id, len(claims))
	return Claim{}
}

// TestScheduleFollowsApply checks that applying events keeps the reminder schedule at the
// next unsent stage (DESIGN.md decision 4): created/pending with an expires-at is scheduled,
// a new expires-at reschedules the unsent stages, a final status or all stages sent takes
// it out, and a leased inquiry is left to its lease holder.
func TestScheduleFollowsApply(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const id = "inq_sched"
	x := t0.Add(24 * time.Hour)

	f.apply(t, ev("evt_1", "inquiry.created", id, t0, with(base(persona.StatusCreated, "itmpl_std"), func(s *snap) { s.ExpiresAt = x })))
	f.wantDue(t, id, x.Add(-6*time.Hour))
	f.apply(t, ev("evt_2", "inquiry.started", id, t0.Add(time.Minute), pendingUntil(x)))
	f.wantDue(t, id, x.Add(-6*time.Hour))

	// The 6h stage is sent: the schedule moves to the 1h stage.
	c := f.claimOne(t, x.Add(-6*time.Hour), id)
	if c.Status != persona.StatusPending || !c.ExpiresAt.Equal(x) || c.EmailAddress != email || c.NameFirst != name ||
		c.ReferenceID != "user-1" || c.LeaseToken == "" || c.TookOver || c.Attempts != 0 {
		t.Errorf("claim = %+v", c)
	}
	if c.LeaseLeft != testLease || c.LeaseUntil.IsZero() || c.Intent != "" {
		t.Errorf("LeaseLeft = %v, LeaseUntil = %v, Intent = %q; want the whole lease on Redis's clock, no intent",
			c.LeaseLeft, c.LeaseUntil, c.Intent)
	}
	f.wantDue(t, id, parked)
	if err := f.store.CompleteReminder(ctx, c, "6h", nil); err != nil {
		t.Fatal(err)
	}
	f.wantDue(t, id, x.Add(-time.Hour))

	// Persona extended the inquiry: the unsent 1h stage follows the new expires-at.
	x2 := x.Add(24 * time.Hour)
	f.apply(t, ev("evt_3", "inquiry.transitioned", id, t0.Add(2*time.Hour), pendingUntil(x2)))
	f.wantDue(t, id, x2.Add(-time.Hour))

	// Replaying old events (duplicates, or forgotten ids with the older expiry) changes nothing.
	f.apply(t, ev("evt_1", "inquiry.created", id, t0, base(persona.StatusCreated, "itmpl_std")))
	f.apply(t, ev("evt_2b", "inquiry.started", id, t0.Add(time.Minute), pendingUntil(x)))
	f.wantDue(t, id, x2.Add(-time.Hour))

	c = f.claimOne(t, x2.Add(-time.Hour), id)
	if !slices.Equal(c.RemindersSent, []string{"6h"}) {
		t.Errorf("RemindersSent = %v, want [6h]", c.RemindersSent)
	}
	if err := f.store.CompleteReminder(ctx, c, "1h", nil); err != nil {
		t.Fatal(err)
	}
	f.wantDue(t, id, time.Time{})
	if got := f.inquiry(t, id).RemindersSent; !slices.Equal(got, []string{"6h", "1h"}) {
		t.Errorf("RemindersSent = %v, want [6h 1h]", got)
	}
	// Every stage sent: a still newer expires-at schedules nothing.
	f.apply(t, ev("evt_4", "inquiry.transitioned", id, t0.Add(3*time.Hour), pendingUntil(x2.Add(time.Hour))))
	f.wantDue(t, id, time.Time{})

	// A second inquiry leaves the schedule when it becomes final.
	const other = "inq_sched2"
	f.apply(t, ev("evt_5", "inquiry.started", other, t0, pendingUntil(x)))
	f.wantDue(t, other, x.Add(-6*time.Hour))
	f.apply(t, ev("evt_6", "inquiry.completed", other, t0.Add(time.Hour), with(pendingUntil(x), func(s *snap) { s.Status = persona.StatusCompleted })))
	f.wantDue(t, other, time.Time{})

	// Derived expiry: scheduled from the template interval, rescheduled by the real one.
	const derived = "inq_sched3"
	f.apply(t, ev("evt_7", "inquiry.created", derived, t0, base(persona.StatusCreated, "itmpl_short")))
	f.wantDue(t, derived, t0.Add(2*time.Hour-6*time.Hour))
	f.apply(t, ev("evt_8", "inquiry.transitioned", derived, t0.Add(time.Minute), with(base(persona.StatusCreated, "itmpl_short"), func(s *snap) { s.ExpiresAt = x })))
	f.wantDue(t, derived, x.Add(-6*time.Hour))
}

// TestScheduleLeaseAndApply checks how applying events meets a held lease: a new expires-at
// leaves the leased entry alone (the holder reschedules from the record), and a final status
// takes the inquiry out of the schedule but leaves the lease, so the holder still records
// the stage it sent; an inquiry that leaves and re-enters created/pending while leased is not
// claimed by anyone else, and the holder's settle schedules its next stage.
func TestScheduleLeaseAndApply(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	x := t0.Add(24 * time.Hour)
	now := x.Add(-6 * time.Hour)

	f.apply(t, ev("evt_1", "inquiry.started", "inq_a", t0, pendingUntil(x)))
	c := f.claimOne(t, now, "inq_a")
	x2 := x.Add(12 * time.Hour)
	f.apply(t, ev("evt_2", "inquiry.transitioned", "inq_a", t0.Add(time.Hour), pendingUntil(x2)))
	f.wantDue(t, "inq_a", parked)
	// The holder had nothing to send under the new expiry: completing with no stage reschedules.
	if err := f.store.CompleteReminder(ctx, c, "", nil); err != nil {
		t.Fatal(err)
	}
	f.wantDue(t, "inq_a", x2.Add(-6*time.Hour))

	f.apply(t, ev("evt_3", "inquiry.started", "inq_b", t0, pendingUntil(x)))
	c = f.claimOne(t, now, "inq_b")
	f.apply(t, ev("evt_4", "inquiry.completed", "inq_b", t0.Add(time.Hour), with(pendingUntil(x), func(s *snap) { s.Status = persona.StatusCompleted })))
	f.wantDue(t, "inq_b", time.Time{})
	if err := f.store.CompleteReminder(ctx, c, "6h", nil); err != nil {
		t.Fatalf("complete after completion: %v, want the stage recorded", err)
	}
	if got := f.inquiry(t, "inq_b").RemindersSent; !slices.Equal(got, []string{"6h"}) {
		t.Errorf("RemindersSent after completion = %v, want [6h]", got)
	}
	f.wantDue(t, "inq_b", time.Time{})
	if ok, _ := f.client.HExists(ctx, f.store.keys.leases(f.store.keys.shard("inq_b")), handleOf("inq_b")).Result(); ok {
		t.Error("lease field survived the settle")
	}
	for name, settle := range map[string]func() error{
		"complete": func() error { return f.store.CompleteReminder(ctx, c, "6h", nil) },
		"release":  func() error { return f.store.ReleaseClaim(ctx, c, now.Add(time.Minute)) },
		"drop":     func() error { return f.store.DropReminders(ctx, c, "test") },
		"intent":   func() error { return f.store.RecordIntent(ctx, c, "6h") },
	} {
		if err := settle(); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("%s after the settle: %v, want ErrLeaseLost", name, err)
		}
	}

	// inq_c leaves created/pending and comes back while leased: nobody else claims it, and the
	// holder's settle records the stage and schedules the next one.
	f.apply(t, ev("evt_5", "inquiry.started", "inq_c", t0, pendingUntil(x)))
	c = f.claimOne(t, now, "inq_c")
	f.apply(t, ev("evt_6", "inquiry.expired", "inq_c", t0.Add(time.Hour), with(pendingUntil(x), func(s *snap) { s.Status = persona.StatusExpired })))
	f.apply(t, ev("evt_7", "inquiry.started", "inq_c", t0.Add(2*time.Hour), pendingUntil(x2)))
	claims, err := f.store.ClaimDue(ctx, x2.Add(-6*time.Hour), testLease, 100)
	if err != nil || slices.ContainsFunc(claims, func(c Claim) bool { return c.InquiryID == "inq_c" }) {
		t.Fatalf("ClaimDue while inq_c is leased = %v, %v; want it left alone", claims, err)
	}
	if err := f.store.CompleteReminder(ctx, c, "6h", nil); err != nil {
		t.Fatal(err)
	}
	if got := f.inquiry(t, "inq_c").RemindersSent; !slices.Equal(got, []string{"6h"}) {
		t.Errorf("RemindersSent of inq_c = %v, want [6h]", got)
	}
	f.wantDue(t, "inq_c", x2.Add(-time.Hour))
}

// TestClaimDue checks claiming: only due inquiries, each once per lease, the per-shard limit,
// takeover after the lease, release with backoff and channel marks, drop, and members whose
// record is gone.
func TestClaimDue(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Shards = 1 })
	ctx := context.Background()
	x := t0.Add(24 * time.Hour)
	now := x.Add(-5 * time.Hour) // the 6h stage is due, the 1h stage is not
	for i := range 5 {
		f.apply(t, ev(fmt.Sprintf("evt_%d", i), "inquiry.started", fmt.Sprintf("inq_%d", i), t0, pendingUntil(x)))
	}
	f.apply(t, ev("evt_late", "inquiry.started", "inq_late", t0, pendingUntil(x.Add(2*time.Hour))))

	if n, err := f.store.DueBacklog(ctx, now); err != nil || n != 5 {
		t.Fatalf("DueBacklog = %d, %v; want 5", n, err)
	}
	claims, err := f.store.ClaimDue(ctx, now, testLease, 3)
	if err != nil || len(claims) != 3 {
		t.Fatalf("ClaimDue(limit 3) = %d claims, %v", len(claims), err)
	}
	more, err := f.store.ClaimDue(ctx, now, testLease, 100)
	if err != nil || len(more) != 2 {
		t.Fatalf("second ClaimDue = %d claims, %v; want the other 2", len(more), err)
	}
	claims = append(claims, more...)
	if again, err := f.store.ClaimDue(ctx, now.Add(testLease-time.Millisecond), testLease, 100); err != nil || len(again) != 0 {
		t.Fatalf("ClaimDue within the lease = %d claims, %v; want none", len(again), err)
	}
	// Leases run on Redis's clock: a replica whose clock is far ahead takes nothing over.
	if again, err := f.store.ClaimDue(ctx, now.Add(10*testLease), testLease, 100); err != nil || len(again) != 0 {
		t.Fatalf("ClaimDue with a clock ahead = %d claims, %v; want none", len(again), err)
	}
	if n, err := f.store.DueBacklog(ctx, now); err != nil || n != 0 {
		t.Errorf("DueBacklog after claiming = %d, %v; want 0", n, err)
	}
	tokens := map[string]bool{}
	for _, c := range claims {
		if c.InquiryID == "inq_late" || tokens[c.LeaseToken] {
			t.Errorf("claim %s with token %q", c.InquiryID, c.LeaseToken)
		}
		tokens[c.LeaseToken] = true
	}

	byID := func(cs []Claim, id string) Claim {
		i := slices.IndexFunc(cs, func(c Claim) bool { return c.InquiryID == id })
		if i < 0 {
			t.Fatalf("no claim of %s", id)
		}
		return cs[i]
	}

	// inq_0 is settled in time; the others' holder "crashed": after the lease they are taken over.
	if err := f.store.CompleteReminder(ctx, byID(claims, "inq_0"), "6h", nil); err != nil {
		t.Fatal(err)
	}
	later := now.Add(testLease)
	f.passLease(testLease)
	taken, err := f.store.ClaimDue(ctx, later, testLease, 100)
	if err != nil || len(taken) != 4 {
		t.Fatalf("ClaimDue after the lease = %d claims, %v; want 4", len(taken), err)
	}
	for _, c := range taken {
		if !c.TookOver {
			t.Errorf("claim of %s after an unsettled lease: TookOver false", c.InquiryID)
		}
	}
	if err := f.store.CompleteReminder(ctx, byID(claims, "inq_1"), "6h", nil); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("complete with the old token: %v, want ErrLeaseLost", err)
	}

	// Release: due again at the retry time, attempts counted, channel marks kept until the stage is done.
	c1 := byID(taken, "inq_1")
	retryAt := later.Add(30 * time.Second)
	if err := f.store.ReleaseClaim(ctx, c1, retryAt, ChannelMark("6h", "email")); err != nil {
		t.Fatal(err)
	}
	f.wantDue(t, "inq_1", retryAt)
	c1 = f.claimOne(t, retryAt, "inq_1")
	if c1.Attempts != 1 || c1.TookOver || !c1.ChannelDone("6h", "email") || c1.StageDone("6h") {
		t.Errorf("claim after release = %+v", c1)
	}
	if err := f.store.CompleteReminder(ctx, c1, "6h", nil); err != nil {
		t.Fatal(err)
	}
	if inq := f.inquiry(t, "inq_1"); !slices.Equal(inq.RemindersSent, []string{"6h"}) {
		t.Errorf("RemindersSent = %v, want [6h] (marks removed)", inq.RemindersSent)
	}
	f.wantDue(t, "inq_1", x.Add(-time.Hour))
	if err := f.store.ReleaseClaim(ctx, c1, retryAt, "bad,mark"); err == nil {
		t.Error("ReleaseClaim accepted a malformed mark")
	}
	if err := f.store.CompleteReminder(ctx, c1, "6h@x", nil); err == nil {
		t.Error("CompleteReminder accepted a malformed stage")
	}

	// Drop: out of the schedule with a reason, until an event schedules it again.
	c2 := byID(taken, "inq_2")
	if err := f.store.DropReminders(ctx, c2, "not_resumable"); err != nil {
		t.Fatal(err)
	}
	f.wantDue(t, "inq_2", time.Time{})
	if got := f.inquiry(t, "inq_2").RemindersDropped; got != "not_resumable" {
		t.Errorf("RemindersDropped = %q", got)
	}
	f.apply(t, ev("evt_2x", "inquiry.transitioned", "inq_2", t0.Add(time.Hour), pendingUntil(x.Add(time.Hour))))
	f.wantDue(t, "inq_2", x.Add(-5*time.Hour))
	if got := f.inquiry(t, "inq_2").RemindersDropped; got != "" {
		t.Errorf("RemindersDropped after rescheduling = %q", got)
	}

	// A member whose record is gone is removed by the claim.
	f.wantDue(t, "inq_3", parked)
	if err := f.client.HDel(ctx, f.store.keys.recordsOf("inq_3"), handleOf("inq_3")).Err(); err != nil {
		t.Fatal(err)
	}
	f.passLease(testLease)
	gone, err := f.store.ClaimDue(ctx, later.Add(testLease), testLease, 100)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(gone, func(c Claim) bool { return c.InquiryID == "inq_3" }) {
		t.Error("claimed an inquiry without a record")
	}
	f.wantDue(t, "inq_3", time.Time{})

	if _, err := f.store.ClaimDue(ctx, now, 0, 1); err == nil {
		t.Error("ClaimDue accepted a zero lease")
	}
}

// TestRemindBeforeConfig checks the stage configuration New accepts.
func TestRemindBeforeConfig(t *testing.T) {
	client, prefix := testenv.Redis(t)
	for _, tt := range []struct {
		stages []time.Duration
		want   string // stage argument, "" for an error
	}{
		{nil, "6h:21600000,1h:3600000"},
		{[]time.Duration{time.Hour, 90 * time.Minute, 45 * time.Second}, "90m:5400000,1h:3600000,45s:45000"},
		{[]time.Duration{0}, ""},
		{[]time.Duration{-time.Hour}, ""},
		{[]time.Duration{1500 * time.Millisecond}, ""},
		{[]time.Duration{time.Hour, 60 * time.Minute}, ""},
	} {
		s, err := New(client, Config{Prefix: prefix, RemindBefore: tt.stages})
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("New(RemindBefore %v) accepted", tt.stages)
		case tt.want != "" && err != nil:
			t.Errorf("New(RemindBefore %v): %v", tt.stages, err)
		case tt.want != "" && s.stageArg != tt.want:
			t.Errorf("New(RemindBefore %v): stages %q, want %q", tt.stages, s.stageArg, tt.want)
		}
	}
}

// TestScheduleScriptsTouchOneSlot runs the schedule scripts (claim, complete, release, drop)
// for inquiries of every shard under the slot checker (DESIGN.md decision 3).
func TestScheduleScriptsTouchOneSlot(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Shards = 16 })
	ctx := context.Background()
	x := t0.Add(24 * time.Hour)
	var events []*persona.Event
	for i := range 64 {
		events = append(events, ev("evt_1", "inquiry.started", fmt.Sprintf("inq_slot%d", i), t0, pendingUntil(x)))
	}
	if _, err := f.store.ApplyBatch(ctx, events); err != nil {
		t.Fatal(err)
	}
	before := f.slots.calls.Load()
	claims, err := f.store.ClaimDue(ctx, x, testLease, 100)
	if err != nil || len(claims) != 64 {
		t.Fatalf("ClaimDue = %d claims, %v", len(claims), err)
	}
	for i, c := range claims {
		switch i % 3 {
		case 0:
			err = f.store.CompleteReminder(ctx, c, "1h", []string{"6h"})
		case 1:
			err = f.store.ReleaseClaim(ctx, c, x.Add(time.Minute), ChannelMark("1h", "email"))
		default:
			err = f.store.DropReminders(ctx, c, "test")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := f.slots.calls.Load()-before, int64(16+64); got < want {
		t.Errorf("slot checker saw %d schedule script calls, want at least %d", got, want)
	}
}

// TestScheduleFollowsExpiryBothWays: a newer event that brings an earlier expires-at
// (PERSONA.md §5: after-create 7 days, after-start 24 hours) reschedules at once, also when
// the stage's sweep has already gone past the new time, and a later one moves the schedule
// out again; an older event's expires-at changes nothing.
func TestScheduleFollowsExpiryBothWays(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Shards = 1 })
	ctx := context.Background()
	const a, b = "inq_a", "inq_b"
	week := 7 * 24 * time.Hour
	claim := func(now time.Time) []Claim {
		t.Helper()
		claims, err := f.store.ClaimDue(ctx, now, testLease, 100)
		if err != nil {
			t.Fatalf("ClaimDue: %v", err)
		}
		return claims
	}

	f.apply(t, ev("evt_a1", "inquiry.created", a, t0, with(base(persona.StatusCreated, "itmpl_std"), func(s *snap) { s.ExpiresAt = t0.Add(week) })))
	f.apply(t, ev("evt_b1", "inquiry.started", b, t0, pendingUntil(t0.Add(18*time.Hour))))
	// The 6h sweep goes up to t0+18h and passes b; a (t0+7d) is far ahead.
	got := claim(t0.Add(12 * time.Hour))
	if len(got) != 1 || got[0].InquiryID != b {
		t.Fatalf("claims at t0+12h = %+v, want inq_b alone", got)
	}
	if err := f.store.CompleteReminder(ctx, got[0], "6h", nil); err != nil {
		t.Fatal(err)
	}

	// a is started: expires at t0+17h, behind the 6h sweep, with its 6h stage already past.
	x := t0.Add(17 * time.Hour)
	f.apply(t, ev("evt_a2", "inquiry.started", a, t0.Add(time.Minute), pendingUntil(x)))
	got = claim(t0.Add(12*time.Hour + time.Second))
	if len(got) != 1 || got[0].InquiryID != a || !got[0].ExpiresAt.Equal(x) {
		t.Fatalf("claims after the shorter expiry = %+v, want inq_a expiring %v", got, x)
	}
	if err := f.store.CompleteReminder(ctx, got[0], "6h", nil); err != nil {
		t.Fatal(err)
	}

	// Extended to t0+3d: the 1h stage of t0+17h is gone, the new one is due at t0+3d-1h.
	x2 := t0.Add(72 * time.Hour)
	f.apply(t, ev("evt_a3", "inquiry.transitioned", a, t0.Add(2*time.Hour), pendingUntil(x2)))
	// An older event (a fresh id) with the week-long expires-at changes nothing.
	f.apply(t, ev("evt_a1b", "inquiry.created", a, t0, with(base(persona.StatusCreated, "itmpl_std"), func(s *snap) { s.ExpiresAt = t0.Add(week) })))
	if got := claim(x.Add(-time.Hour)); len(got) != 0 {
		t.Fatalf("claims at the old 1h stage = %+v, want none", got)
	}
	got = claim(x2.Add(-time.Hour)) // inq_b's 1h stage (long past) comes with it
	i := slices.IndexFunc(got, func(c Claim) bool { return c.InquiryID == a })
	if i < 0 || !got[i].ExpiresAt.Equal(x2) || !got[i].StageDone("6h") {
		t.Fatalf("claims at the new 1h stage = %+v, want inq_a expiring %v with 6h done", got, x2)
	}
}

// TestClaimDueSoonestFirstAndIntent: ClaimDue takes the soonest expiries across all shards
// first; a send intent recorded under a lease comes back with every takeover of that lease
// until it is settled, and a stale token cannot record one.
func TestClaimDueSoonestFirstAndIntent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	x := t0.Add(24 * time.Hour)
	const count = 40
	for i := range count {
		// Expiries one minute apart, in an order unrelated to the shards.
		at := x.Add(time.Duration((i*17)%count) * time.Minute)
		f.apply(t, ev("evt_1", "inquiry.started", fmt.Sprintf("inq_%02d", i), t0, pendingUntil(at)))
	}
	now := x.Add(-5 * time.Hour)
	var order []time.Time
	var first []Claim
	for len(order) < count {
		claims, err := f.store.ClaimDue(ctx, now, testLease, 7)
		if err != nil || len(claims) == 0 || len(claims) > 7 {
			t.Fatalf("ClaimDue = %d claims, %v; want 1 to 7", len(claims), err)
		}
		if first == nil {
			first = claims
		}
		for _, c := range claims {
			order = append(order, c.ExpiresAt)
		}
	}
	for i := 1; i < len(order); i++ {
		if order[i].Before(order[i-1]) {
			t.Fatalf("claim %d expires at %v, before claim %d at %v: not soonest first", i, order[i], i-1, order[i-1])
		}
	}

	c := first[0]
	if err := f.store.RecordIntent(ctx, c, "6h"); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RecordIntent(ctx, c, "6h,1h"); err == nil {
		t.Error("RecordIntent accepted an invalid stage name")
	}
	for round := range 2 {
		f.passLease(testLease)
		taken, err := f.store.ClaimDue(ctx, now, testLease, 1)
		if err != nil || len(taken) != 1 {
			t.Fatalf("round %d: takeover = %d claims, %v", round, len(taken), err)
		}
		got := taken[0]
		if got.InquiryID != c.InquiryID || !got.TookOver || got.Intent != "6h" {
			t.Fatalf("round %d: takeover = %s took over %v intent %q; want %s with intent 6h",
				round, got.InquiryID, got.TookOver, got.Intent, c.InquiryID)
		}
		if err := f.store.RecordIntent(ctx, c, "6h"); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("round %d: intent with the old token: %v, want ErrLeaseLost", round, err)
		}
		c = got
	}
	if err := f.store.CompleteReminder(ctx, c, c.Intent, nil); err != nil {
		t.Fatal(err)
	}
	f.passLease(testLease)
	again, err := f.store.ClaimDue(ctx, now, testLease, count)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range again {
		if a.InquiryID == c.InquiryID || a.Intent != "" {
			t.Errorf("after settling: claim of %s with intent %q", a.InquiryID, a.Intent)
		}
	}
	if len(again) != count-1 {
		t.Errorf("after the leases ran out: %d takeovers, want %d", len(again), count-1)
	}
}
