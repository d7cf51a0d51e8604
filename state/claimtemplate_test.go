package state

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// TestClaimNamesTemplate: a claim carries its inquiry's template id (notify picks the brand
// by it), over several shards and templates, with the cache serving repeats.
func TestClaimNamesTemplate(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Shards = 4 })
	ctx := context.Background()
	x := t0.Add(24 * time.Hour)
	want := map[string]string{}
	for i := range 12 {
		id, tmpl := fmt.Sprintf("inq_t%d", i), fmt.Sprintf("itmpl_brand%d", i%3)
		want[id] = tmpl
		f.apply(t, ev("evt_"+id, "inquiry.started", id, t0, with(base(persona.StatusPending, tmpl), func(s *snap) {
			s.StartedAt, s.ExpiresAt = t0, x
		})))
	}
	check := func(at time.Time) {
		t.Helper()
		claims, err := f.store.ClaimDue(ctx, at, testLease, 100)
		if err != nil || len(claims) != len(want) {
			t.Fatalf("ClaimDue = %d claims, %v", len(claims), err)
		}
		for _, c := range claims {
			if c.TemplateID != want[c.InquiryID] {
				t.Errorf("claim of %s: TemplateID %q, want %q", c.InquiryID, c.TemplateID, want[c.InquiryID])
			}
		}
	}
	check(x.Add(-5 * time.Hour))
	// The shards' template hashes go away (the claim script does not read them): the claims
	// taken over below can only be named from the cache.
	for shard := range 4 {
		if err := f.client.Del(ctx, f.store.keys.templates(shard)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	f.passLease(testLease + time.Second)
	check(x.Add(-5 * time.Hour)) // taken over: names from the cache
}
