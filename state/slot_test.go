package state

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// TestKeySlot checks the test's CRC16 slot function against Redis Cluster's documented values.
func TestKeySlot(t *testing.T) {
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Errorf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	for key, want := range map[string]int{
		"somekey":              11058,
		"foo{hash_tag}":        keySlot("hash_tag"),
		"{user1000}.following": keySlot("user1000"),
		"foo{}{bar}":           int(crc16([]byte("foo{}{bar}")) % 16384),
		"foo{{bar}}zap":        keySlot("{bar"),
		"resumer:{7}:r":        keySlot("7"),
	} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
}

// TestScriptsTouchOneSlot runs the apply script (with purging) and Purge for inquiries of
// every shard and checks that each invocation's keys share one cluster slot (DESIGN.md
// decision 3). The same check runs as a hook in every other test of this package, the
// schedule scripts' in TestScheduleScriptsTouchOneSlot.
func TestScriptsTouchOneSlot(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Shards = 16; c.Retention = time.Hour })
	ctx := context.Background()
	var events []*persona.Event
	for i := range 64 {
		id := fmt.Sprintf("inq_slot%d", i)
		events = append(events,
			ev("evt_1", "inquiry.created", id, t0, base(persona.StatusCreated, "itmpl_std")),
			ev("evt_2", "inquiry.failed", id, t0.Add(time.Minute), base(persona.StatusFailed, "itmpl_std")))
	}
	if _, err := f.store.ApplyBatch(ctx, events); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(2 * time.Hour)
	if _, err := f.store.ApplyBatch(ctx, events[:20]); err != nil { // purges in passing
		t.Fatal(err)
	}
	if _, err := f.store.Purge(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if got, want := f.slots.calls.Load(), int64(len(events)+20+16); got < want {
		t.Errorf("slot checker saw %d script calls, want at least %d", got, want)
	}
	shards := map[int]bool{}
	for i := range 64 {
		shards[f.store.keys.shard(fmt.Sprintf("inq_slot%d", i))] = true
	}
	if len(shards) != 16 {
		t.Errorf("64 inquiries fell into %d of 16 shards", len(shards))
	}
}
