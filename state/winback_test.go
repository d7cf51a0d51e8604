package state

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// TestWinbackClaimsEachExpiredInquiryOnce: only inquiries that expired less than the window
// ago are claimed, each once; an intent makes the win-back final whatever happens to the
// sender; a claim whose lease ran out before an intent is taken over; a retry waits for its
// time; an inquiry revived before its claim is not claimed.
func TestWinbackClaimsEachExpiredInquiryOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	within, lease := 72*time.Hour, time.Minute
	expire := func(id string, at time.Time) {
		f.apply(t, ev("evt_c_"+id, "inquiry.created", id, at.Add(-time.Hour), &snap{Status: persona.StatusCreated, ExpiresAt: at}))
		f.apply(t, ev("evt_x_"+id, "inquiry.expired", id, at, &snap{Status: persona.StatusExpired, ExpiredAt: at}))
	}
	// An old expiry, filed long ago.
	f.clock.Set(t0.Add(-100 * time.Hour))
	expire("inq_old", t0.Add(-100*time.Hour))
	f.clock.Set(t0)
	expire("inq_a", t0)
	expire("inq_d", t0)
	expire("inq_e", t0)
	expire("inq_revived", t0)
	f.apply(t, ev("evt_r", "inquiry.transitioned", "inq_revived", t0.Add(time.Minute), &snap{Status: persona.StatusPending, ExpiresAt: t0.Add(25 * time.Hour)}))
	f.apply(t, ev("evt_done", "inquiry.completed", "inq_done", t0, &snap{Status: persona.StatusCompleted}))
	f.clock.Add(2 * time.Minute) // past the walk's skew

	claims, err := f.store.ClaimWinbacks(ctx, within, lease, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]WinbackClaim{}
	for _, c := range claims {
		got[c.Inquiry.ID] = c
	}
	if len(got) != 3 || got["inq_a"].Token == "" || got["inq_d"].Token == "" || got["inq_e"].Token == "" {
		t.Fatalf("claimed %v, want inq_a, inq_d and inq_e", keysOf(got))
	}
	if again, _ := f.store.ClaimWinbacks(ctx, within, lease, 10); len(again) != 0 {
		t.Fatalf("claimed again while leased: %d", len(again))
	}
	// a: the sender records its intent, then dies. d: the sender dies before its intent.
	// e: a transient failure, retried in 10 minutes.
	if err := f.store.WinbackIntent(ctx, got["inq_a"]); err != nil {
		t.Fatal(err)
	}
	if err := f.store.SettleWinback(ctx, got["inq_e"], "", f.clock.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(2 * time.Minute) // leases over
	claims, err = f.store.ClaimWinbacks(ctx, within, lease, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(claims) != 1 || claims[0].Inquiry.ID != "inq_d" || claims[0].Token == got["inq_d"].Token {
		t.Fatalf("after the leases: claimed %+v, want only inq_d, under a new token", claims)
	}
	if err := f.store.WinbackIntent(ctx, got["inq_d"]); !errors.Is(err, ErrWinbackLost) {
		t.Errorf("intent under the lost claim = %v, want ErrWinbackLost", err)
	}
	if err := f.store.SettleWinback(ctx, claims[0], "sent", time.Time{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(10 * time.Minute) // e's retry is due
	claims, err = f.store.ClaimWinbacks(ctx, within, lease, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(claims) != 1 || claims[0].Inquiry.ID != "inq_e" {
		t.Fatalf("at e's retry: claimed %+v, want inq_e", claims)
	}
	// Beyond the window nothing is claimed any more.
	f.clock.Add(within)
	if err := f.store.SettleWinback(ctx, claims[0], "", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	if late, _ := f.store.ClaimWinbacks(ctx, within, lease, 10); len(late) != 0 {
		t.Errorf("claimed %d win-backs after the window", len(late))
	}
}

// TestWinbackWalkIsBatched: with a limit of 2, five expired inquiries come in three claims.
func TestWinbackWalkIsBatched(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Shards = 1 })
	ctx := context.Background()
	f.clock.Set(t0)
	for _, id := range []string{"inq_1", "inq_2", "inq_3", "inq_4", "inq_5"} {
		f.apply(t, ev("evt_x_"+id, "inquiry.expired", id, t0, &snap{Status: persona.StatusExpired, ExpiredAt: t0}))
		f.clock.Add(time.Millisecond)
	}
	f.clock.Add(2 * time.Minute)
	seen := map[string]bool{}
	for i := range 4 {
		claims, err := f.store.ClaimWinbacks(ctx, time.Hour, time.Hour, 2)
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 && len(claims) != 2 || i == 2 && len(claims) != 1 || i == 3 && len(claims) != 0 {
			t.Fatalf("claim %d: %d inquiries", i, len(claims))
		}
		for _, c := range claims {
			if seen[c.Inquiry.ID] {
				t.Fatalf("%s claimed twice", c.Inquiry.ID)
			}
			seen[c.Inquiry.ID] = true
		}
	}
}

func keysOf(m map[string]WinbackClaim) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestWinbackContactKeptUntilDone: with Config.WinbackContact the e-mail address of an expired
// inquiry stays for its win-back and is deleted once the win-back is settled; without it,
// expiry deletes it at once (DESIGN.md decision 8).
func TestWinbackContactKeptUntilDone(t *testing.T) {
	for _, keep := range []bool{false, true} {
		f := newFixture(t, func(c *Config) { c.WinbackContact = keep })
		ctx := context.Background()
		f.clock.Set(t0)
		f.apply(t, ev("evt_c", "inquiry.started", "inq_k", t0.Add(-time.Hour), &snap{Status: persona.StatusPending, ExpiresAt: t0, EmailAddress: "jane@example.com", NameFirst: "Jane"}))
		f.apply(t, ev("evt_x", "inquiry.expired", "inq_k", t0, &snap{Status: persona.StatusExpired, ExpiredAt: t0}))
		inq := f.inquiry(t, "inq_k")
		if (inq.EmailAddress != "") != keep || (inq.NameFirst != "") != keep {
			t.Fatalf("keep=%v: expired record has e-mail %q, name %q", keep, inq.EmailAddress, inq.NameFirst)
		}
		if !keep {
			continue
		}
		f.clock.Add(2 * time.Minute)
		claims, err := f.store.ClaimWinbacks(ctx, time.Hour, time.Minute, 10)
		if err != nil || len(claims) != 1 || claims[0].Inquiry.EmailAddress != "jane@example.com" {
			t.Fatalf("claim: %+v, %v; want inq_k with its e-mail", claims, err)
		}
		if err := f.store.SettleWinback(ctx, claims[0], "sent", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if inq := f.inquiry(t, "inq_k"); inq.EmailAddress != "" || inq.NameFirst != "" {
			t.Errorf("after the win-back the record still has e-mail %q, name %q", inq.EmailAddress, inq.NameFirst)
		}
	}
}

// TestTemplateVersionRecorded: the inquiry-template-version an event carries is kept with the
// record (as the shard's code) and read back; a later event without it keeps it.
func TestTemplateVersionRecorded(t *testing.T) {
	f := newFixture(t)
	f.apply(t, ev("evt_v1", "inquiry.created", "inq_v", t0, &snap{Status: persona.StatusCreated, TemplateID: "itmpl_a", TemplateVersionID: "itmplv_one"}))
	if got := f.inquiry(t, "inq_v"); got.TemplateVersionID != "itmplv_one" || got.TemplateID != "itmpl_a" {
		t.Fatalf("template %q version %q, want itmpl_a itmplv_one", got.TemplateID, got.TemplateVersionID)
	}
	f.apply(t, ev("evt_v2", "inquiry.started", "inq_v", t0.Add(time.Minute), &snap{Status: persona.StatusPending}))
	if got := f.inquiry(t, "inq_v"); got.TemplateVersionID != "itmplv_one" {
		t.Fatalf("version %q after an event without it, want itmplv_one", got.TemplateVersionID)
	}
}
