package state

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// sameShard returns n inquiry ids that live in the same shard as id.
func sameShard(f *fixture, id string, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		c := fmt.Sprintf("inq_peer%d", i)
		if f.store.keys.shard(c) == f.store.keys.shard(id) {
			out = append(out, c)
		}
	}
	return out
}

// TestRetentionAndPII: e-mail and name go when the inquiry becomes final, the record and its
// dedup data then live Retention and are purged, with the counters, by the next apply in
// their shard (DESIGN.md decision 8).
func TestRetentionAndPII(t *testing.T) {
	const retention = 48 * time.Hour
	f := newFixture(t, func(c *Config) { c.Retention = retention })
	const id = "inq_r"
	x := t0.Add(24 * time.Hour)
	f.apply(t, ev("evt_1", "inquiry.started", id, t0, with(base(persona.StatusPending, "itmpl_std"), func(s *snap) { s.ExpiresAt = x })))

	got := f.inquiry(t, id)
	if got.EmailAddress != email || got.NameFirst != name {
		t.Errorf("pending record: e-mail %q name %q, want both kept", got.EmailAddress, got.NameFirst)
	}
	if score, ok := f.inExpiry(t, id); !ok || int64(score) != x.UnixMilli() {
		t.Errorf("expiry index: member %v score %v, want expires-at (the record goes retention after it)", ok, int64(score))
	}

	f.clock.Add(time.Hour)
	completedAt := f.clock.Now()
	f.apply(t, ev("evt_2", "inquiry.completed", id, t0.Add(time.Hour), with(base(persona.StatusCompleted, "itmpl_std"), func(s *snap) { s.ExpiresAt = x })))
	got = f.inquiry(t, id)
	if got.EmailAddress != "" || got.NameFirst != "" {
		t.Errorf("completed record keeps e-mail %q name %q", got.EmailAddress, got.NameFirst)
	}
	raw := f.rawRecord(t, id)
	for _, field := range []string{fieldEmail, fieldNameFirst} {
		if _, ok := raw[field]; ok {
			t.Errorf("completed record still has field %s", field)
		}
	}
	if score, ok := f.inRetention(t, id); !ok || int64(score) != completedAt.Add(retention).UnixMilli() {
		t.Errorf("retention index: member %v score %v, want completion + retention", ok, int64(score))
	}
	if _, ok := f.inExpiry(t, id); ok {
		t.Error("completed inquiry still in the expiry index")
	}
	// A later status (approved) restarts the retention; session events do not.
	f.clock.Add(time.Hour)
	f.apply(t, ev("evt_3", "inquiry-session.expired", id, t0.Add(2*time.Hour), nil))
	if score, _ := f.inRetention(t, id); int64(score) != completedAt.Add(retention).UnixMilli() {
		t.Error("a session event moved the retention deadline")
	}

	peers := sameShard(f, id, 2)
	f.clock.Set(completedAt.Add(retention - time.Second))
	f.apply(t, ev("evt_p1", "inquiry.created", peers[0], t0, base(persona.StatusCreated, "itmpl_std")))
	if _, err := f.store.Inquiry(context.Background(), id); err != nil {
		t.Errorf("record gone before its retention ended: %v", err)
	}
	f.clock.Add(time.Second)
	f.apply(t, ev("evt_p2", "inquiry.created", peers[1], t0, base(persona.StatusCreated, "itmpl_std")))
	if _, err := f.store.Inquiry(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Errorf("record after retention: %v, want ErrNotFound", err)
	}
	if _, ok := f.inRetention(t, id); ok {
		t.Error("purged inquiry still in the retention index")
	}
	if got, want := f.counts(t), map[persona.Status]int64{persona.StatusCreated: 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("CountByStatus after purge = %v, want %v", got, want)
	}
}

// TestPurgeAbandoned: a pending inquiry that never got a final event is purged Retention
// after its expires-at, and leaves the counters and indexes.
func TestPurgeAbandoned(t *testing.T) {
	const retention = 24 * time.Hour
	f := newFixture(t, func(c *Config) { c.Retention = retention })
	ctx := context.Background()
	x := t0.Add(24 * time.Hour)
	for i := range 3 {
		f.apply(t, ev("evt_1", "inquiry.started", fmt.Sprintf("inq_ab%d", i), t0, with(base(persona.StatusPending, "itmpl_std"), func(s *snap) { s.ExpiresAt = x })))
	}
	f.apply(t, ev("evt_2", "inquiry.started", "inq_alive", t0, with(base(persona.StatusPending, "itmpl_std"), func(s *snap) { s.ExpiresAt = x.Add(time.Hour) })))
	if _, err := f.store.Purge(ctx, 0); err == nil {
		t.Error("Purge(limit 0) succeeded")
	}
	f.clock.Set(x.Add(retention - time.Millisecond))
	if n, err := f.store.Purge(ctx, 10); err != nil || n != 0 {
		t.Fatalf("Purge before the deadline = %d, %v; want 0", n, err)
	}
	f.clock.Set(x.Add(retention))
	if n, err := f.store.Purge(ctx, 10); err != nil || n != 3 {
		t.Fatalf("Purge = %d, %v; want 3", n, err)
	}
	for i := range 3 {
		id := fmt.Sprintf("inq_ab%d", i)
		if _, err := f.store.Inquiry(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s after purge: %v", id, err)
		}
		if _, ok := f.inExpiry(t, id); ok {
			t.Errorf("%s still in the expiry index", id)
		}
	}
	if got, want := f.counts(t), map[persona.Status]int64{persona.StatusPending: 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("CountByStatus = %v, want %v", got, want)
	}
}

// TestDueIndexCleared: the notifier's reminder schedule loses an inquiry that can no longer
// be reminded.
func TestDueIndexCleared(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const id = "inq_due"
	f.apply(t, ev("evt_1", "inquiry.started", id, t0, base(persona.StatusPending, "itmpl_std")))
	due := f.store.keys.queue(f.store.keys.shard(id))
	if err := f.client.ZAdd(ctx, due, redisZ(t0.Add(time.Hour), handleOf(id))).Err(); err != nil {
		t.Fatal(err)
	}
	f.apply(t, ev("evt_2", "inquiry.declined", id, t0.Add(time.Minute), base(persona.StatusDeclined, "itmpl_std")))
	if _, ok := f.score(t, due, id); ok {
		t.Error("declined inquiry still in the due index")
	}
}
