package state

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// TestOpenInquiriesWalksEveryOpenInquiryOnce tracks open inquiries (some sharing an
// expires-at, so index ties are crossed) and final ones, and walks them in batches: every
// open inquiry comes exactly once, no final one comes, batches fill across shards, and a walk
// resumed from a cursor's text continues where it stopped.
func TestOpenInquiriesWalksEveryOpenInquiryOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	open := map[string]bool{}
	for i := range 250 {
		id := fmt.Sprintf("inq_open%020d", i)
		// 10 distinct expiry times: every shard has long runs of equal scores.
		exp := t0.Add(24*time.Hour + time.Duration(i%10)*time.Minute)
		f.apply(t, ev(fmt.Sprintf("evt_c%d", i), "inquiry.created", id, t0, &snap{Status: persona.StatusCreated, ExpiresAt: exp}))
		open[id] = true
	}
	for i := range 30 {
		id := fmt.Sprintf("inq_done%020d", i)
		f.apply(t, ev(fmt.Sprintf("evt_d%d", i), "inquiry.completed", id, t0, &snap{Status: persona.StatusCompleted}))
	}

	seen := map[string]int{}
	var cursor OpenCursor
	batches := 0
	for {
		got, next, done, err := f.store.OpenInquiries(ctx, cursor, 40)
		if err != nil {
			t.Fatalf("OpenInquiries: %v", err)
		}
		batches++
		if !done && len(got) != 40 {
			t.Errorf("batch %d: %d inquiries before the end, want a full 40", batches, len(got))
		}
		for _, inq := range got {
			seen[inq.ID]++
			if !inq.Status.Resumable() {
				t.Errorf("%s: status %s is not open", inq.ID, inq.Status)
			}
		}
		// Resume from the cursor's text, as a restarted pass does.
		if cursor, err = ParseOpenCursor(next.String()); err != nil {
			t.Fatalf("ParseOpenCursor(%q): %v", next.String(), err)
		}
		if done {
			break
		}
		if batches > 100 {
			t.Fatal("walk does not end")
		}
	}
	if batches > 7 { // ceil(250/40) = 7
		t.Errorf("%d batches for 250 open inquiries in batches of 40, want at most 7", batches)
	}
	for id := range open {
		if seen[id] != 1 {
			t.Errorf("%s seen %d times, want once", id, seen[id])
		}
	}
	if len(seen) != len(open) {
		t.Errorf("walk returned %d inquiries, want %d", len(seen), len(open))
	}
}

func TestOpenInquiriesRefusesBadArguments(t *testing.T) {
	f := newFixture(t)
	if _, _, _, err := f.store.OpenInquiries(context.Background(), OpenCursor{}, 0); err == nil {
		t.Error("limit 0: no error")
	}
	if _, _, _, err := f.store.OpenInquiries(context.Background(), OpenCursor{Shard: 99}, 10); err == nil {
		t.Error("shard 99 of 8: no error")
	}
	for _, bad := range []string{"x", "1:2", "a:1:00", "1:b:00", "1:1:zz", "-1:1:00"} {
		if _, err := ParseOpenCursor(bad); err == nil {
			t.Errorf("ParseOpenCursor(%q): no error", bad)
		}
	}
}

// TestSingletonLeaseFencesCheckpoints: one holder at a time; a holder whose lease ran out and
// was taken over can neither renew nor move the checkpoint.
func TestSingletonLeaseFencesCheckpoints(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// 2 s: long enough that a loaded machine's stall cannot end a's lease before its own
	// checkpoint below, short enough to wait out.
	ok, err := f.store.AcquireLease(ctx, "reconcile", "a", 2*time.Second)
	if err != nil || !ok {
		t.Fatalf("AcquireLease(a) = %v, %v; want true", ok, err)
	}
	if ok, _ := f.store.AcquireLease(ctx, "reconcile", "b", time.Minute); ok {
		t.Fatal("b took a running lease")
	}
	if err := f.store.SaveCheckpoint(ctx, "reconcile", "a", map[string]string{"since": "1", "cursor": "x"}); err != nil {
		t.Fatalf("SaveCheckpoint(a): %v", err)
	}
	if err := f.store.SaveCheckpoint(ctx, "reconcile", "b", map[string]string{"since": "2"}); !errors.Is(err, ErrSingletonLost) {
		t.Fatalf("SaveCheckpoint(b) = %v, want ErrSingletonLost", err)
	}
	// a's lease runs out (Redis' own clock: wait past the PX), b takes over.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ok, _ = f.store.AcquireLease(ctx, "reconcile", "b", time.Minute); ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ok {
		t.Fatal("b never took the expired lease")
	}
	if err := f.store.RenewLease(ctx, "reconcile", "a", time.Minute); !errors.Is(err, ErrSingletonLost) {
		t.Errorf("RenewLease(a) after takeover = %v, want ErrSingletonLost", err)
	}
	if err := f.store.SaveCheckpoint(ctx, "reconcile", "a", map[string]string{"since": "3"}); !errors.Is(err, ErrSingletonLost) {
		t.Errorf("SaveCheckpoint(a) after takeover = %v, want ErrSingletonLost", err)
	}
	if err := f.store.SaveCheckpoint(ctx, "reconcile", "b", map[string]string{"cursor": ""}); err != nil {
		t.Fatalf("SaveCheckpoint(b): %v", err)
	}
	cp, err := f.store.Checkpoint(ctx, "reconcile")
	if err != nil {
		t.Fatal(err)
	}
	if cp["since"] != "1" || cp["cursor"] != "" || len(cp) != 1 {
		t.Errorf("checkpoint = %v, want since=1 only (a's stale write refused, b deleted cursor)", cp)
	}
	if err := f.store.ReleaseLease(ctx, "reconcile", "a"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.store.AcquireLease(ctx, "reconcile", "c", time.Minute); ok {
		t.Error("a's release freed b's lease")
	}
	if err := f.store.ReleaseLease(ctx, "reconcile", "b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.store.AcquireLease(ctx, "reconcile", "c", time.Minute); !ok {
		t.Error("c cannot take the released lease")
	}
}
