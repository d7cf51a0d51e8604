package state

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// TestRawApply checks that running what RawApply returns changes Redis exactly as Apply does:
// the same records, outcomes and counters under two prefixes fed the same events.
func TestRawApply(t *testing.T) {
	viaApply := newFixture(t)
	viaRaw := newFixture(t)
	client := viaRaw.client
	ctx := context.Background()
	x := t0.Add(24 * time.Hour)
	p := &snap{Status: persona.StatusCreated, ReferenceID: "user-1", TemplateID: "itmpl_a", CreatedAt: t0,
		ExpiresAt: x, EmailAddress: "jane@example.com", NameFirst: "Jane"}
	started := *p
	started.Status, started.StartedAt = persona.StatusPending, t0.Add(time.Minute)
	events := []*persona.Event{
		ev("evt_1", "inquiry.created", "inq_1", t0, p),
		ev("evt_2", "inquiry.started", "inq_1", t0.Add(time.Minute), &started),
		ev("evt_2", "inquiry.started", "inq_1", t0.Add(time.Minute), &started), // duplicate
		ev("evt_3", "inquiry.session.started", "inq_1", t0.Add(2*time.Minute), nil),
		ev("evt_4", "inquiry.created", "inq_2", t0, p),
	}
	for _, e := range events {
		want := viaApply.apply(t, e)
		script, keys, args, err := viaRaw.store.RawApply(e)
		if err != nil {
			t.Fatalf("RawApply(%s): %v", e.ID, err)
		}
		got, err := script.Run(ctx, client, keys, args...).Text()
		if err != nil {
			t.Fatalf("run raw apply of %s: %v", e.ID, err)
		}
		if Outcome(got) != want {
			t.Errorf("%s: raw outcome %q, Apply %q", e.ID, got, want)
		}
	}
	for _, id := range []string{"inq_1", "inq_2"} {
		if a, r := viaApply.inquiry(t, id), viaRaw.inquiry(t, id); !reflect.DeepEqual(a, r) {
			t.Errorf("%s: raw record %+v, Apply's %+v", id, r, a)
		}
	}
	if a, r := viaApply.counts(t), viaRaw.counts(t); !reflect.DeepEqual(a, r) {
		t.Errorf("raw counters %v, Apply's %v", r, a)
	}
	if _, _, _, err := viaRaw.store.RawApply(&persona.Event{ID: "evt_x", Name: "inquiry.created"}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("RawApply of an event without inquiry: %v, want ErrInvalidEvent", err)
	}
}
