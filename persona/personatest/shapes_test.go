package personatest_test

import (
	"slices"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
)

// lastEvent parses the simulator's last emitted event as the receiver would.
func lastEvent(t *testing.T, sim *personatest.Server) *persona.Event {
	t.Helper()
	all := sim.Events()
	if len(all) == 0 {
		t.Fatal("no event emitted")
	}
	ev, err := persona.ParseEvent(all[len(all)-1].Body)
	if err != nil {
		t.Fatalf("parse %s: %v", all[len(all)-1].Name, err)
	}
	return ev
}

// TestSimTemplateIntervals: PERSONA.md §5: intervals are per template and independent; with
// after-create 7 days and after-start 24 hours, inquiry.started carries an earlier
// expires-at than inquiry.created. After-start defaults to the template's create value, and
// a resume of an expired inquiry uses after-resume.
func TestSimTemplateIntervals(t *testing.T) {
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	sim := personatest.NewServer(t, personatest.Options{
		Now: func() time.Time { return now },
		TemplateIntervals: map[string]personatest.Intervals{
			"itmpl_week": {AfterCreate: 7 * day, AfterStart: day, AfterResume: 2 * day},
			"itmpl_long": {AfterCreate: 3 * day},
		},
	})
	inq := sim.CreateInquiry(personatest.InquiryParams{TemplateID: "itmpl_week"})
	if got := lastEvent(t, sim).Inquiry.ExpiresAt; !got.Equal(now.Add(7 * day)) {
		t.Errorf("created: expires-at %v, want 7 days on", got)
	}
	sim.Advance(time.Hour)
	must(t, sim.Start(inq.ID))
	if got := lastEvent(t, sim).Inquiry.ExpiresAt; !got.Equal(now.Add(25 * time.Hour)) {
		t.Errorf("started: expires-at %v, want 24 h after the start (earlier than created's)", got)
	}
	long := sim.CreateInquiry(personatest.InquiryParams{TemplateID: "itmpl_long"})
	must(t, sim.Start(long.ID))
	if got := lastEvent(t, sim).Inquiry.ExpiresAt; !got.Equal(now.Add(time.Hour + 3*day)) {
		t.Errorf("after-start defaulting to the template's after-create: expires-at %v", got)
	}
	other := sim.CreateInquiry(personatest.InquiryParams{})
	if !other.ExpiresAt.Equal(now.Add(time.Hour + day)) {
		t.Errorf("default template: expires-at %v, want 24 h", other.ExpiresAt)
	}
}

// TestSimObjectEvents: PERSONA.md §4: a webhook subscribed to more than inquiries gets
// account.*, case.* (inquiries under relationships.inquiries), report/* (inquiry may be
// null), verification.* and document.* (relationships.inquiry) and transaction.* events in
// the same envelope; §3: some omit created-at. Each parses as persona reads it, in every key
// inflection.
func TestSimObjectEvents(t *testing.T) {
	for _, inflection := range []string{"kebab", "camel", "snake"} {
		t.Run(inflection, func(t *testing.T) {
			now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
			sim := personatest.NewServer(t, personatest.Options{Now: func() time.Time { return now }, WebhookKeyInflection: inflection})
			inq := sim.CreateInquiry(personatest.InquiryParams{})
			tests := []struct {
				event       personatest.ObjectEvent
				inquiryID   string
				related     []string
				payloadType string
				source      persona.TimeSource
			}{
				{personatest.ObjectEvent{Name: "account.created"}, "", nil, "account", persona.TimeFromEvent},
				{personatest.ObjectEvent{Name: "case.created", InquiryIDs: []string{inq.ID, "inq_other"}}, "", []string{inq.ID, "inq_other"}, "case", persona.TimeFromEvent},
				{personatest.ObjectEvent{Name: "report/watchlist.ready"}, "", nil, "report/watchlist", persona.TimeFromEvent},
				{personatest.ObjectEvent{Name: "report/watchlist.ready", InquiryID: inq.ID}, "", []string{inq.ID}, "report/watchlist", persona.TimeFromEvent},
				{personatest.ObjectEvent{Name: "verification.passed", Type: "verification/government-id", InquiryID: inq.ID}, inq.ID, nil, "verification/government-id", persona.TimeFromEvent},
				{personatest.ObjectEvent{Name: "verification.passed", Type: "verification/database"}, "", nil, "verification/database", persona.TimeFromEvent},
				{personatest.ObjectEvent{Name: "document.submitted", Type: "document/generic", InquiryID: inq.ID, OmitCreatedAt: true}, inq.ID, nil, "document/generic", persona.TimeFromUpdatedAt},
				{personatest.ObjectEvent{Name: "transaction.created", OmitCreatedAt: true, OmitUpdatedAt: true}, "", nil, "transaction", persona.TimeUnknown},
			}
			for _, tt := range tests {
				emitted := sim.EmitObjectEvent(tt.event)
				ev, err := persona.ParseEvent(emitted.Body)
				if err != nil {
					t.Fatalf("%s: %v", tt.event.Name, err)
				}
				if ev.Name != tt.event.Name || ev.ID != emitted.ID || ev.InquiryID != tt.inquiryID ||
					ev.PayloadType != tt.payloadType || !slices.Equal(ev.RelatedInquiryIDs, tt.related) || ev.TimeSource != tt.source {
					t.Errorf("%+v parses as %+v", tt.event, ev)
				}
				if tt.source != persona.TimeUnknown && !ev.CreatedAt.Equal(now) {
					t.Errorf("%s: time %v, want %v", tt.event.Name, ev.CreatedAt, now)
				}
			}
		})
	}
}

// TestSimOmitCreatedAt: PERSONA.md §3: some of Persona's samples omit the event's
// created-at; the payload's updated-at then tells the event's time.
func TestSimOmitCreatedAt(t *testing.T) {
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	sim := personatest.NewServer(t, personatest.Options{Now: func() time.Time { return now }, WebhookOmitCreatedAt: true})
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	sim.Advance(time.Minute)
	must(t, sim.Start(inq.ID))
	for i, se := range sim.Events() {
		ev, err := persona.ParseEvent(se.Body)
		if err != nil {
			t.Fatal(err)
		}
		want := now.Add(time.Duration(i) * time.Minute)
		if ev.TimeSource != persona.TimeFromUpdatedAt || !ev.CreatedAt.Equal(want) || ev.InquiryID != inq.ID {
			t.Errorf("%s: time %v from %q, want %v from updated_at", se.Name, ev.CreatedAt, ev.TimeSource, want)
		}
	}
}
