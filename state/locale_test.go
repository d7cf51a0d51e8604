package state

import (
	"context"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// TestLocaleField: the inquiry's locale field is kept like its other attributes (the newest
// event that carries it wins, an older one only fills it, an event without it keeps it) and
// reaches the claim, so the reminder is written in the user's language.
func TestLocaleField(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	x := t0.Add(24 * time.Hour)
	const id = "inq_locale1"
	at := func(locale string) *snap {
		return with(pendingUntil(x), func(s *snap) { s.Locale = locale })
	}
	steps := []struct {
		name   string
		event  *persona.Event
		locale string
	}{
		{"carried", ev("evt_1", "inquiry.started", id, t0, at("es-MX")), "es-MX"},
		{"newer without it", ev("evt_2", "inquiry.transitioned", id, t0.Add(time.Minute), at("")), "es-MX"},
		{"older with another", ev("evt_0", "inquiry.created", id, t0.Add(-time.Minute), at("en")), "es-MX"},
		{"newer with another", ev("evt_3", "inquiry.transitioned", id, t0.Add(2*time.Minute), at("de")), "de"},
	}
	for _, step := range steps {
		f.apply(t, step.event)
		if got := f.inquiry(t, id).Locale; got != step.locale {
			t.Fatalf("%s: Locale %q, want %q", step.name, got, step.locale)
		}
	}
	claims, err := f.store.ClaimDue(ctx, x.Add(-5*time.Hour), testLease, 10)
	if err != nil || len(claims) != 1 || claims[0].Locale != "de" {
		t.Fatalf("ClaimDue = %+v, %v; want the claim with locale de", claims, err)
	}
	// An inquiry without the field stores nothing for it.
	f.apply(t, ev("evt_9", "inquiry.started", "inq_nolocale", t0, pendingUntil(x)))
	if _, ok := f.rawRecord(t, "inq_nolocale")[fieldLocale]; ok {
		t.Error("a record without a locale stores the field")
	}
	// What the field costs: the stored record with and without it (go test -run
	// TestLocaleField -v ./state prints it).
	f.apply(t, ev("evt_10", "inquiry.started", "inq_withlocale", t0, at("es-MX")))
	size := func(id string) int64 {
		handle, _ := splitID(id)
		return f.client.HStrLen(ctx, f.store.keys.recordsOf(id), handle).Val()
	}
	with, without := size("inq_withlocale"), size("inq_nolocale")
	if with <= without || with > without+int64(len("es-MX"))+16 {
		t.Errorf("record with a locale %d bytes, without %d", with, without)
	}
	t.Logf("record bytes: %d without a locale, %d with \"es-MX\"", without, with)
}
