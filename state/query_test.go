package state

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/persona"
)

func redisZ(at time.Time, member string) redis.Z {
	return redis.Z{Score: float64(at.UnixMilli()), Member: member}
}

// TestExpiring: created/pending inquiries in the window, soonest first, across shards.
func TestExpiring(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := f.clock.Now()
	// inq_k expires k hours from now (k = 0..9); even ones are pending, odd ones created.
	for k := range 10 {
		id := fmt.Sprintf("inq_%d", k)
		status, name := persona.StatusPending, "inquiry.started"
		if k%2 == 1 {
			status, name = persona.StatusCreated, "inquiry.created"
		}
		f.apply(t, ev("evt_1", name, id, t0, with(base(status, "itmpl_std"), func(s *snap) { s.ExpiresAt = now.Add(time.Duration(k) * time.Hour) })))
	}
	// Completed, and already expired: never listed.
	f.apply(t, ev("evt_2", "inquiry.completed", "inq_2", t0.Add(time.Minute), base(persona.StatusCompleted, "itmpl_std")))
	f.apply(t, ev("evt_1", "inquiry.started", "inq_past", t0, with(base(persona.StatusPending, "itmpl_std"), func(s *snap) { s.ExpiresAt = now.Add(-time.Minute) })))

	got, err := f.store.Expiring(ctx, 5*time.Hour, 3)
	if err != nil {
		t.Fatalf("Expiring: %v", err)
	}
	var ids []string
	for _, inq := range got {
		ids = append(ids, inq.ID)
		if inq.EmailAddress != email {
			t.Errorf("%s: e-mail %q, want it for the reminder", inq.ID, inq.EmailAddress)
		}
	}
	if fmt.Sprint(ids) != "[inq_0 inq_1 inq_3]" {
		t.Errorf("Expiring(5h, 3) = %v, want [inq_0 inq_1 inq_3]", ids)
	}
	got, err = f.store.Expiring(ctx, 5*time.Hour, 100)
	if err != nil || len(got) != 5 {
		t.Errorf("Expiring(5h, 100) = %d inquiries, %v; want 5 (inq_0,1,3,4,5)", len(got), err)
	}
	if n, err := f.store.CountExpiring(ctx, 5*time.Hour); err != nil || n != 5 {
		t.Errorf("CountExpiring(5h) = %d, %v; want 5", n, err)
	}
	if n, err := f.store.CountExpiring(ctx, 24*time.Hour); err != nil || n != 9 {
		t.Errorf("CountExpiring(24h) = %d, %v; want 9", n, err)
	}
	if _, err := f.store.Expiring(ctx, time.Hour, 0); err == nil {
		t.Error("Expiring(limit 0) succeeded")
	}
	want := map[persona.Status]int64{persona.StatusPending: 5, persona.StatusCreated: 5, persona.StatusCompleted: 1}
	if got := f.counts(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("CountByStatus = %v, want %v", got, want)
	}
}
