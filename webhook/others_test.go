package webhook_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/webhook"
)

// TestReceiverStoresEveryPersonaEvent: Persona retries every answer but 2xx for days
// (PERSONA.md §2), so every signed event envelope is stored and answered 200: events about
// other objects (§4: account, case with relationships.inquiries, report with a null inquiry,
// verification without an inquiry, transaction) under their own subject, parts of an
// inquiry under the inquiry subjects, and events without created-at (§3) with the payload's
// updated-at or the receive time.
func TestReceiverStoresEveryPersonaEvent(t *testing.T) {
	h := newHarness(t, testenv.NATS(t), nil)
	received := "2026-01-05T10:00:03Z" // receiverNow
	tests := []struct {
		file, subject, kind string
		headers             map[string]string // "" means absent
	}{{
		file: "account-created.kebab.json", subject: "persona.events.other.account.created", kind: "account",
		headers: map[string]string{eventstream.HeaderInquiryID: "", eventstream.HeaderRelatedInquiryIDs: "",
			eventstream.HeaderEventCreatedAt: "2026-01-05T09:50:00Z", eventstream.HeaderEventTimeSource: ""},
	}, {
		file: "case-created.kebab.json", subject: "persona.events.other.case.created", kind: "case",
		headers: map[string]string{eventstream.HeaderInquiryID: "",
			eventstream.HeaderRelatedInquiryIDs: fixtureInquiryID + ",inq_4RtY7uI1oP9aS3dF6gH2jK8L"},
	}, {
		file: "report-watchlist-ready.kebab.json", subject: "persona.events.other.report/watchlist.ready", kind: "report",
		headers: map[string]string{eventstream.HeaderInquiryID: "", eventstream.HeaderRelatedInquiryIDs: ""},
	}, {
		file: "verification-passed.no-inquiry.kebab.json", subject: "persona.events.other.verification.passed", kind: "verification",
		headers: map[string]string{eventstream.HeaderInquiryID: ""},
	}, {
		file: "transaction-created.no-times.kebab.json", subject: "persona.events.other.transaction.created", kind: "transaction",
		headers: map[string]string{eventstream.HeaderInquiryID: "", eventstream.HeaderEventCreatedAt: received,
			eventstream.HeaderEventTimeSource: "received_at"},
	}, {
		file: "document-submitted.no-created-at.kebab.json", subject: "persona.events.document.submitted", kind: "document",
		headers: map[string]string{eventstream.HeaderInquiryID: fixtureInquiryID,
			eventstream.HeaderEventCreatedAt: "2026-01-05T10:12:30.5Z", eventstream.HeaderEventTimeSource: "updated_at"},
	}, {
		file: "inquiry-session-started.kebab.json", subject: "persona.events.inquiry-session.started", kind: "inquiry-session",
		headers: map[string]string{eventstream.HeaderInquiryID: fixtureInquiryID, eventstream.HeaderEventTimeSource: ""},
	}}
	for i, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("..", "persona", "testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			kindBefore := h.value(t, "events_total", "kind", tt.kind)
			if r := h.deliver(t, body, now); r.status != http.StatusOK {
				t.Fatalf("status = %d (%q), want 200", r.status, r.body)
			}
			// Persona's retry of the same event: 200 again, stored and counted once.
			if r := h.deliver(t, body, now); r.status != http.StatusOK {
				t.Fatalf("redelivery: status = %d (%q), want 200", r.status, r.body)
			}
			if got := h.value(t, "events_total", "kind", tt.kind); got != kindBefore+1 {
				t.Errorf("events_total{kind=%q} = %v, want %v", tt.kind, got, kindBefore+1)
			}
			msg := h.message(t, uint64(i+1))
			if msg.Subject != tt.subject {
				t.Errorf("subject = %q, want %q", msg.Subject, tt.subject)
			}
			if got, want := eventstream.IsOtherSubject(msg.Subject), tt.headers[eventstream.HeaderInquiryID] == ""; got != want {
				t.Errorf("IsOtherSubject(%q) = %v, want %v", msg.Subject, got, want)
			}
			for name, want := range tt.headers {
				if got := msg.Header.Get(name); got != want {
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
		})
	}
	if n := h.stored(t); n != uint64(len(tests)) {
		t.Errorf("stream holds %d messages, want %d", n, len(tests))
	}
	for source, want := range map[string]float64{"updated_at": 1, "received_at": 1} {
		if got := h.value(t, "event_time_fallbacks_total", "source", source); got != want {
			t.Errorf("event_time_fallbacks_total{source=%q} = %v, want %v", source, got, want)
		}
	}
	if got := h.value(t, "requests_total", "outcome", "malformed"); got != 0 {
		t.Errorf("%v requests refused as malformed, want 0", got)
	}
}

// TestReceiverAnswersSimulatorShapes: the Persona simulator delivers every shape of
// PERSONA.md §3-§5 to the receiver (template intervals that shorten the expiry, inquiry events
// without created-at, case events with relationships.inquiries, events about accounts,
// reports with a null inquiry, verifications, documents and transactions) and Persona sees a
// 200 for every delivery (§2): no retry storm. Each is stored once, under the inquiry
// subjects or, for other objects, under persona.events.other.
func TestReceiverAnswersSimulatorShapes(t *testing.T) {
	h := newHarness(t, testenv.NATS(t), func(o *webhook.Options) { o.Now = time.Now })
	sim := personatest.NewServer(t, personatest.Options{
		WebhookURLs: []string{h.srv.URL + webhook.Path}, WebhookSecret: string(newSecret),
		WebhookRetryDelays: []time.Duration{10 * time.Millisecond}, WebhookOmitCreatedAt: true,
		TemplateIntervals: map[string]personatest.Intervals{"itmpl_week": {AfterCreate: 7 * 24 * time.Hour, AfterStart: 24 * time.Hour}},
	})
	inq := sim.CreateInquiry(personatest.InquiryParams{TemplateID: "itmpl_week"})
	if err := sim.Start(inq.ID); err != nil {
		t.Fatal(err)
	}
	for _, e := range []personatest.ObjectEvent{
		{Name: "account.created"},
		{Name: "case.created", InquiryIDs: []string{inq.ID}},
		{Name: "report/watchlist.ready"},
		{Name: "verification.passed", Type: "verification/government-id", InquiryID: inq.ID},
		{Name: "verification.passed", Type: "verification/database"},
		{Name: "document.submitted", Type: "document/generic", InquiryID: inq.ID, OmitCreatedAt: true},
		{Name: "transaction.created", OmitCreatedAt: true, OmitUpdatedAt: true},
	} {
		sim.EmitObjectEvent(e)
	}
	events := sim.Events()
	deadline := time.Now().Add(20 * time.Second)
	for len(sim.Deliveries()) < len(events) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	deliveries := sim.Deliveries()
	if len(deliveries) != len(events) {
		t.Fatalf("%d deliveries of %d events", len(deliveries), len(events))
	}
	for _, d := range deliveries {
		if !d.OK || d.Status != 200 || d.Attempt != 1 {
			t.Errorf("%s: attempt %d answered %d (%s), want one 200", d.EventName, d.Attempt, d.Status, d.Err)
		}
	}
	if n := h.stored(t); n != uint64(len(events)) {
		t.Errorf("stream holds %d messages, want %d", n, len(events))
	}
	others := 0
	for seq := uint64(1); seq <= uint64(len(events)); seq++ {
		msg := h.message(t, seq)
		if eventstream.IsOtherSubject(msg.Subject) {
			others++
		}
	}
	if others != 5 { // account, case, report, the verification and the transaction of no inquiry
		t.Errorf("%d events under persona.events.other, want 5", others)
	}
	for source, want := range map[string]float64{"updated_at": 3, "received_at": 1} {
		if got := h.value(t, "event_time_fallbacks_total", "source", source); got != want {
			t.Errorf("event_time_fallbacks_total{source=%q} = %v, want %v", source, got, want)
		}
	}
}
