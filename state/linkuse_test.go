package state

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestUseLinkOnce: of many concurrent uses of one single-use link exactly one is first; the
// mark is per link and inquiry, lives in the inquiry's shard, expires with the link, and
// ReleaseLink gives the link back.
func TestUseLinkOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	until := f.clock.Now().Add(time.Hour)
	var firsts atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			ok, err := f.store.UseLink(ctx, "inq_a", "L1", until)
			if err != nil {
				t.Error(err)
			}
			if ok {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if n := firsts.Load(); n != 1 {
		t.Fatalf("%d uses were first, want exactly 1", n)
	}
	for _, tc := range []struct {
		inquiry, link string
		want          bool
	}{{"inq_a", "L1", true}, {"inq_a", "L2", false}, {"inq_b", "L1", false}} {
		if used, err := f.store.LinkUsed(ctx, tc.inquiry, tc.link); err != nil || used != tc.want {
			t.Errorf("LinkUsed(%s, %s) = %v, %v; want %v", tc.inquiry, tc.link, used, err, tc.want)
		}
	}
	key := f.store.keys.linkUse("inq_a", "L1")
	if ttl := f.client.PTTL(ctx, key).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("mark expires in %s, want the link's hour", ttl)
	}
	if got, want := keySlot(key), keySlot(f.store.keys.recordsOf("inq_a")); got != want {
		t.Errorf("mark in slot %d, the inquiry's record in %d", got, want)
	}
	if err := f.store.ReleaseLink(ctx, "inq_a", "L1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.store.UseLink(ctx, "inq_a", "L1", until); err != nil || !ok {
		t.Errorf("use after release = %v, %v; want first", ok, err)
	}
	if _, err := f.store.UseLink(ctx, "inq_a", "", until); err == nil {
		t.Error("empty link id accepted")
	}
	if ok, err := f.store.UseLink(ctx, "inq_c", "L1", f.clock.Now().Add(-time.Hour)); err != nil || !ok {
		t.Errorf("use of a link past its expiry = %v, %v (kept a second)", ok, err)
	}
}
