package persona_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// readFixture returns testdata/name: a webhook body as Persona delivers it (compact JSON:API,
// PERSONA.md §3).
func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatalf("read fixture: %v", err)
	}
	return b
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

const (
	inquiryID         = "inq_VNb5oPDNrXhLMaWNkYBxDfJ2"
	templateID        = "itmpl_Ygs16MKTkA6obnF8C3Rb17dm"
	templateVersionID = "itmplv_7Ab3xQe9Lp2Vn5Rk8Ws1Dz4F"
	accountID         = "act_ZcQ8yRk3N1uH6vJ2xW9pLm4T"
)

func TestParseEventFixtures(t *testing.T) {
	tests := []struct {
		file string
		want persona.Event
	}{{
		// The default kebab-case envelope (PERSONA.md §3), with expires-at (§5).
		file: "inquiry-started.kebab.json",
		want: persona.Event{
			ID: "evt_kQ3tW8mZr5xC9vB2nL7pJ4hD", Name: "inquiry.started",
			CreatedAt: utc("2026-01-05T10:00:00Z"), InquiryID: inquiryID, PayloadType: "inquiry",
			Inquiry: &persona.Inquiry{
				ID: inquiryID, Status: persona.StatusPending, ReferenceID: "user-123",
				TemplateID: templateID, TemplateVersionID: templateVersionID, AccountID: accountID,
				CreatedAt: utc("2026-01-05T09:58:12Z"), StartedAt: utc("2026-01-05T10:00:00Z"),
				ExpiresAt: utc("2026-01-06T10:00:00Z"), UpdatedAt: utc("2026-01-05T10:00:00Z"),
				EmailAddress: "jane@example.com", NameFirst: "Jane",
			},
		},
	}, {
		// Key-Inflection: camel (PERSONA.md §3); started-at is null before the user starts.
		file: "inquiry-created.camel.json",
		want: persona.Event{
			ID: "evt_Hj6sD2fG9kL4qW8eR1tY5uI3", Name: "inquiry.created",
			CreatedAt: utc("2026-01-05T09:58:12Z"), InquiryID: inquiryID, PayloadType: "inquiry",
			Inquiry: &persona.Inquiry{
				ID: inquiryID, Status: persona.StatusCreated, ReferenceID: "user-123",
				TemplateID: templateID, TemplateVersionID: templateVersionID, AccountID: accountID,
				CreatedAt: utc("2026-01-05T09:58:12Z"), ExpiresAt: utc("2026-01-06T09:58:12Z"),
				UpdatedAt:    utc("2026-01-05T09:58:12Z"),
				EmailAddress: "jane@example.com", NameFirst: "Jane",
			},
		},
	}, {
		// Key-Inflection: snake; Persona's expired sample has expired-at: null (PERSONA.md §3).
		file: "inquiry-expired.snake.json",
		want: persona.Event{
			ID: "evt_Zx4cV7bN1mQ9wE3rT6yU8iO2", Name: "inquiry.expired",
			CreatedAt: utc("2026-01-06T10:00:03.12Z"), InquiryID: inquiryID, PayloadType: "inquiry",
			Inquiry: &persona.Inquiry{
				ID: inquiryID, Status: persona.StatusExpired, ReferenceID: "user-123",
				TemplateID: templateID, TemplateVersionID: templateVersionID, AccountID: accountID,
				CreatedAt: utc("2026-01-05T09:58:12Z"), StartedAt: utc("2026-01-05T10:00:00Z"),
				ExpiresAt: utc("2026-01-06T10:00:00Z"), UpdatedAt: utc("2026-01-05T10:00:00Z"),
				EmailAddress: "jane@example.com", NameFirst: "Jane",
			},
		},
	}, {
		// An older webhook version: no expires-at (PERSONA.md §5), the "template"
		// relationship, and personal data as plain attributes instead of fields.
		file: "inquiry-completed.no-expiry.kebab.json",
		want: persona.Event{
			ID: "evt_Pq8wE5rT2yU7iO4pA1sD9fG6", Name: "inquiry.completed",
			CreatedAt: utc("2024-11-20T16:42:09.531Z"), InquiryID: "inq_4RtY7uI1oP9aS3dF6gH2jK8L",
			PayloadType: "inquiry",
			Inquiry: &persona.Inquiry{
				ID: "inq_4RtY7uI1oP9aS3dF6gH2jK8L", Status: persona.StatusCompleted,
				ReferenceID: "user-123", TemplateID: templateID, TemplateVersionID: templateVersionID, AccountID: accountID,
				CreatedAt: utc("2024-11-20T16:30:00Z"), StartedAt: utc("2024-11-20T16:31:15Z"),
				CompletedAt: utc("2024-11-20T16:42:09Z"), UpdatedAt: utc("2024-11-20T16:31:15Z"),
				EmailAddress: "jane@example.com", NameFirst: "Jane",
			},
		},
	}, {
		// inquiry-session.* events (PERSONA.md §4) name their inquiry through a relationship.
		file: "inquiry-session-started.kebab.json",
		want: persona.Event{
			ID: "evt_Lk2jH5gF8dS1aQ4wE7rT0yU3", Name: "inquiry-session.started",
			CreatedAt: utc("2026-01-05T11:20:04.25Z"), InquiryID: inquiryID,
			PayloadType: "inquiry-session",
		},
	}, {
		// PERSONA.md §4: a webhook subscribed to more than inquiries gets account.* events,
		// about no inquiry at all.
		file: "account-created.kebab.json",
		want: persona.Event{
			ID: "evt_Ac7kQ2mW9xR4tY6uB1nC3vD8", Name: "account.created",
			CreatedAt: utc("2026-01-05T09:50:00Z"), PayloadType: "account",
		},
	}, {
		// PERSONA.md §4: case.* events list their inquiries under relationships.inquiries
		// (plural); a case is not an inquiry, so the event changes none of them.
		file: "case-created.kebab.json",
		want: persona.Event{
			ID: "evt_Cs4nR8wQ1zT5yL9mK2vX7bH3", Name: "case.created",
			CreatedAt: utc("2026-01-05T11:00:00Z"), PayloadType: "case",
			RelatedInquiryIDs: []string{inquiryID, "inq_4RtY7uI1oP9aS3dF6gH2jK8L"},
		},
	}, {
		// PERSONA.md §4: report/* events, whose relationships.inquiry.data may be null.
		file: "report-watchlist-ready.kebab.json",
		want: persona.Event{
			ID: "evt_Rp9wL3xK6zN1qT8mV4bY2cH7", Name: "report/watchlist.ready",
			CreatedAt: utc("2026-01-05T12:00:00Z"), PayloadType: "report/watchlist",
		},
	}, {
		// PERSONA.md §4: a verification without an inquiry (a transaction's) is about another
		// object.
		file: "verification-passed.no-inquiry.kebab.json",
		want: persona.Event{
			ID: "evt_Vf5kN2wQ8zR1tY4mL7xB3cH9", Name: "verification.passed",
			CreatedAt: utc("2026-01-05T10:05:00Z"), PayloadType: "verification/database",
		},
	}, {
		// PERSONA.md §3: some samples omit the event's created-at; the payload's updated-at
		// stands in. §4: a document with an inquiry relationship is part of that inquiry.
		file: "document-submitted.no-created-at.kebab.json",
		want: persona.Event{
			ID: "evt_Dc3mQ7wN1zK5tR9xL2vY8bH4", Name: "document.submitted",
			CreatedAt: utc("2026-01-05T10:12:30.5Z"), TimeSource: persona.TimeFromUpdatedAt,
			InquiryID: inquiryID, PayloadType: "document/generic",
		},
	}, {
		// PERSONA.md §3, §4: neither created-at nor updated-at: no time (the receiver's
		// receive time stands in), and a transaction is about no inquiry.
		file: "transaction-created.no-times.kebab.json",
		want: persona.Event{
			ID: "evt_Tx8nL4wK2zQ6tR1mV9bY3cH5", Name: "transaction.created",
			TimeSource: persona.TimeUnknown, PayloadType: "transaction",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := readFixture(t, tt.file)
			got, err := persona.ParseEvent(body)
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			assertEvent(t, got, &tt.want)
		})
	}
}

// TestParseEventInflections re-keys every fixture into each of the three inflections Persona's
// Key-Inflection setting offers (PERSONA.md §3) and expects the same event from all of them.
func TestParseEventInflections(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		body := readFixture(t, filepath.Base(file))
		want, err := persona.ParseEvent(body)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, inflection := range []struct {
			name string
			key  func(string) string
		}{{"kebab", toKebab}, {"camel", toCamel}, {"snake", toSnake}} {
			t.Run(filepath.Base(file)+"/"+inflection.name, func(t *testing.T) {
				got, err := persona.ParseEvent(rekey(t, body, inflection.key))
				if err != nil {
					t.Fatalf("ParseEvent: %v", err)
				}
				assertEvent(t, got, want)
			})
		}
	}
}

func TestParseEventLenient(t *testing.T) {
	tests := []struct {
		name string
		body string
		want persona.Event
	}{{
		name: "every optional inquiry attribute null",
		body: `{"data":{"type":"event","id":"evt_1","attributes":{"name":"inquiry.created",
			"created-at":"2026-01-05T10:00:00.000Z","payload":{"data":{"type":"inquiry","id":"inq_1",
			"attributes":{"status":null,"reference-id":null,"created-at":null,"started-at":null,
			"expires-at":null,"completed-at":null,"failed-at":null,"expired-at":null,
			"redacted-at":null,"fields":null},"relationships":null}}}}}`,
		want: persona.Event{ID: "evt_1", Name: "inquiry.created", CreatedAt: utc("2026-01-05T10:00:00Z"),
			InquiryID: "inq_1", PayloadType: "inquiry", Inquiry: &persona.Inquiry{ID: "inq_1"}},
	}, {
		name: "inquiry without attributes, included or relationships",
		body: `{"data":{"id":"evt_2","attributes":{"name":"inquiry.started",
			"created-at":"2026-01-05T10:00:00Z","payload":{"data":{"type":"inquiry","id":"inq_2"}}}}}`,
		want: persona.Event{ID: "evt_2", Name: "inquiry.started", CreatedAt: utc("2026-01-05T10:00:00Z"),
			InquiryID: "inq_2", PayloadType: "inquiry", Inquiry: &persona.Inquiry{ID: "inq_2"}},
	}, {
		name: "values of the wrong type are absent",
		body: `{"data":{"type":"event","id":"evt_3","attributes":{"name":"inquiry.started",
			"created-at":"2026-01-05T10:00:00Z","payload":{"data":{"type":"inquiry","id":"inq_3",
			"attributes":{"status":7,"expires-at":"tomorrow","started-at":false,
			"fields":{"email-address":{"type":"string","value":42},"name-first":["Jane"]}},
			"relationships":{"inquiry-template":{"data":"itmpl_x"},"account":[]}}}}}}`,
		want: persona.Event{ID: "evt_3", Name: "inquiry.started", CreatedAt: utc("2026-01-05T10:00:00Z"),
			InquiryID: "inq_3", PayloadType: "inquiry", Inquiry: &persona.Inquiry{ID: "inq_3"}},
	}, {
		name: "a field as a bare string",
		body: `{"data":{"type":"event","id":"evt_4","attributes":{"name":"inquiry.created",
			"created-at":"2026-01-05T10:00:00Z","payload":{"data":{"type":"inquiry","id":"inq_4",
			"attributes":{"fields":{"email-address":"jane@example.com"}}}}}}}`,
		want: persona.Event{ID: "evt_4", Name: "inquiry.created", CreatedAt: utc("2026-01-05T10:00:00Z"),
			InquiryID: "inq_4", PayloadType: "inquiry",
			Inquiry: &persona.Inquiry{ID: "inq_4", EmailAddress: "jane@example.com"}},
	}, {
		name: "created-at with an offset and no fraction",
		body: `{"data":{"type":"event","id":"evt_5","attributes":{"name":"inquiry.created",
			"created-at":"2026-01-05T11:00:00+01:00","payload":{"data":{"type":"inquiry","id":"inq_5"}}}}}`,
		want: persona.Event{ID: "evt_5", Name: "inquiry.created", CreatedAt: utc("2026-01-05T10:00:00Z"),
			InquiryID: "inq_5", PayloadType: "inquiry", Inquiry: &persona.Inquiry{ID: "inq_5"}},
	}, {
		// Unknown events and payloads are kept, never rejected (PERSONA.md §4).
		name: "unknown event with a verification payload",
		body: `{"data":{"type":"event","id":"evt_6","attributes":{"name":"verification.passed",
			"created-at":"2026-01-05T10:00:00Z","payload":{"data":{"type":"verification/government-id",
			"id":"ver_6","attributes":{"status":"passed"},
			"relationships":{"inquiry":{"data":{"type":"inquiry","id":"inq_6"}}}}}}}}`,
		want: persona.Event{ID: "evt_6", Name: "verification.passed", CreatedAt: utc("2026-01-05T10:00:00Z"),
			InquiryID: "inq_6", PayloadType: "verification/government-id"},
	}}
	// A signed event envelope is stored whatever else it lacks (PERSONA.md §2: a refusal is
	// retried for days; §3: be lenient with nulls and missing fields).
	const (
		head = `{"data":{"type":"event","id":"evt_1","attributes":{"name":"inquiry.started","created-at":"2026-01-05T10:00:00Z",`
		tail = `}}}`
	)
	noTime := func(created string) string {
		return `{"data":{"type":"event","id":"evt_1","attributes":{"name":"inquiry.started",` + created +
			`"payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"updated-at":"2026-01-05T10:00:01Z"}}}}}}`
	}
	at := utc("2026-01-05T10:00:00Z")
	fromUpdated := persona.Event{ID: "evt_1", Name: "inquiry.started", CreatedAt: utc("2026-01-05T10:00:01Z"),
		TimeSource: persona.TimeFromUpdatedAt, InquiryID: "inq_1", PayloadType: "inquiry",
		Inquiry: &persona.Inquiry{ID: "inq_1", UpdatedAt: utc("2026-01-05T10:00:01Z")}}
	for _, tt := range []struct {
		name, body string
		want       persona.Event
	}{
		{"missing created-at", noTime(``), fromUpdated},
		{"created-at null", noTime(`"created-at":null,`), fromUpdated},
		{"created-at not a time", noTime(`"created-at":"yesterday",`), fromUpdated},
		{"created-at a unix time", noTime(`"created-at":1767607200,`), fromUpdated},
		{"no time at all", `{"data":{"type":"event","id":"evt_1","attributes":{"name":"inquiry.started"}}}`,
			persona.Event{ID: "evt_1", Name: "inquiry.started"}},
		{"missing payload", head + `"redacted-at":null` + tail, persona.Event{ID: "evt_1", Name: "inquiry.started", CreatedAt: at}},
		{"payload data null", head + `"payload":{"data":null}` + tail, persona.Event{ID: "evt_1", Name: "inquiry.started", CreatedAt: at}},
		{"inquiry without id", head + `"payload":{"data":{"type":"inquiry","attributes":{"status":"pending"}}}` + tail,
			persona.Event{ID: "evt_1", Name: "inquiry.started", CreatedAt: at, PayloadType: "inquiry"}},
		{"session without inquiry relationship", head + `"payload":{"data":{"type":"inquiry-session","id":"iqse_1","relationships":{"inquiry":{"data":null}}}}` + tail,
			persona.Event{ID: "evt_1", Name: "inquiry.started", CreatedAt: at, PayloadType: "inquiry-session"}},
		{"snake-case part type", head + `"payload":{"data":{"type":"inquiry_session","id":"iqse_1","relationships":{"inquiry":{"data":{"type":"inquiry","id":"inq_1"}}}}}` + tail,
			persona.Event{ID: "evt_1", Name: "inquiry.started", CreatedAt: at, PayloadType: "inquiry_session", InquiryID: "inq_1"}},
		{"report naming an inquiry", head + `"payload":{"data":{"type":"report/watchlist","id":"rep_1","relationships":{"inquiry":{"data":{"type":"inquiry","id":"inq_1"}}}}}` + tail,
			persona.Event{ID: "evt_1", Name: "inquiry.started", CreatedAt: at, PayloadType: "report/watchlist", RelatedInquiryIDs: []string{"inq_1"}}},
	} {
		tests = append(tests, struct {
			name string
			body string
			want persona.Event
		}{tt.name, tt.body, tt.want})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := persona.ParseEvent([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			assertEvent(t, got, &tt.want)
		})
	}
}

func TestParseEventMalformed(t *testing.T) {
	started := readFixture(t, "inquiry-started.kebab.json")
	tests := []struct {
		name string
		body string
	}{
		{"empty", ``},
		{"not json", `inquiry.started`},
		{"json null", `null`},
		{"json array", `[{"data":{}}]`},
		{"json string", `"evt_1"`},
		{"truncated", string(started[:len(started)/2])},
		{"trailing garbage", string(started) + `}`},
		{"no data", `{"meta":{}}`},
		{"data null", `{"data":null}`},
		{"data not an object", `{"data":[1,2]}`},
		{"data of another type", `{"data":{"type":"inquiry","id":"inq_1","attributes":{}}}`},
		{"missing id", `{"data":{"type":"event","attributes":{"name":"inquiry.started","created-at":"2026-01-05T10:00:00Z","payload":{"data":{"type":"inquiry","id":"inq_1"}}}}}`},
		{"id null", `{"data":{"type":"event","id":null,"attributes":{"name":"inquiry.started","created-at":"2026-01-05T10:00:00Z","payload":{"data":{"type":"inquiry","id":"inq_1"}}}}}`},
		{"id a number", `{"data":{"type":"event","id":17,"attributes":{"name":"inquiry.started","created-at":"2026-01-05T10:00:00Z","payload":{"data":{"type":"inquiry","id":"inq_1"}}}}}`},
		{"missing attributes", `{"data":{"type":"event","id":"evt_1"}}`},
		{"attributes not an object", `{"data":{"type":"event","id":"evt_1","attributes":"inquiry.started"}}`},
		{"missing name", `{"data":{"type":"event","id":"evt_1","attributes":{"created-at":"2026-01-05T10:00:00Z","payload":{"data":{"type":"inquiry","id":"inq_1"}}}}}`},
		{"name null", `{"data":{"type":"event","id":"evt_1","attributes":{"name":null,"created-at":"2026-01-05T10:00:00Z"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := persona.ParseEvent([]byte(tt.body))
			if !errors.Is(err, persona.ErrMalformedEvent) {
				t.Fatalf("ParseEvent error = %v, want one wrapping ErrMalformedEvent", err)
			}
			if ev != nil {
				t.Errorf("ParseEvent returned %+v with its error", ev)
			}
		})
	}
}

// FuzzParseEvent feeds ParseEvent arbitrary bodies (seeds in testdata/fuzz/FuzzParseEvent and
// the fixtures). It must never panic; an event it accepts has everything an event cannot be
// processed without, and an error always wraps ErrMalformedEvent.
func FuzzParseEvent(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		f.Add(readFixture(f, filepath.Base(file)))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := persona.ParseEvent(body)
		env, envErr := persona.ParseEnvelope(body)
		if (err == nil) != (envErr == nil) {
			t.Fatalf("ParseEvent error %v, ParseEnvelope error %v", err, envErr)
		}
		if err == nil {
			if env.Inquiry != nil {
				t.Fatalf("ParseEnvelope decoded the inquiry")
			}
			want := *ev
			want.Inquiry = nil
			if !reflect.DeepEqual(*env, want) {
				t.Fatalf("ParseEnvelope = %+v, want %+v", *env, want)
			}
		}
		if err != nil {
			if !errors.Is(err, persona.ErrMalformedEvent) {
				t.Fatalf("error %v does not wrap ErrMalformedEvent", err)
			}
			if ev != nil {
				t.Fatalf("event %+v returned with error %v", ev, err)
			}
			return
		}
		if ev.ID == "" || ev.Name == "" {
			t.Fatalf("accepted event lacks a required field: %+v", ev)
		}
		if ev.CreatedAt.IsZero() != (ev.TimeSource == persona.TimeUnknown) {
			t.Fatalf("event time %v from %q", ev.CreatedAt, ev.TimeSource)
		}
		if (ev.PayloadType == "inquiry" && ev.InquiryID != "") != (ev.Inquiry != nil) {
			t.Fatalf("payload type %q, inquiry id %q with inquiry %v", ev.PayloadType, ev.InquiryID, ev.Inquiry)
		}
		if ev.AboutInquiry() && len(ev.RelatedInquiryIDs) > 0 {
			t.Fatalf("inquiry event with related inquiries %v", ev.RelatedInquiryIDs)
		}
		if ev.Inquiry != nil && ev.Inquiry.ID != ev.InquiryID {
			t.Fatalf("inquiry id %q, event inquiry id %q", ev.Inquiry.ID, ev.InquiryID)
		}
		again, err := persona.ParseEvent(body)
		if err != nil {
			t.Fatalf("second parse: %v", err)
		}
		assertEvent(t, again, ev)
	})
}

func BenchmarkParseEnvelope(b *testing.B) {
	body := readFixture(b, "inquiry-started.kebab.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := persona.ParseEnvelope(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEvent(b *testing.B) {
	body := readFixture(b, "inquiry-started.kebab.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := persona.ParseEvent(body); err != nil {
			b.Fatal(err)
		}
	}
}

// assertEvent compares two events; a want with a CreatedAt and no TimeSource expects
// TimeFromEvent.
func assertEvent(t *testing.T, got, want *persona.Event) {
	t.Helper()
	wantSource := want.TimeSource
	if wantSource == persona.TimeUnknown && !want.CreatedAt.IsZero() {
		wantSource = persona.TimeFromEvent
	}
	if got.ID != want.ID || got.Name != want.Name || !got.CreatedAt.Equal(want.CreatedAt) ||
		got.InquiryID != want.InquiryID || got.PayloadType != want.PayloadType || got.TimeSource != wantSource {
		t.Errorf("event = {ID:%q Name:%q CreatedAt:%v TimeSource:%q InquiryID:%q PayloadType:%q}, want {ID:%q Name:%q CreatedAt:%v TimeSource:%q InquiryID:%q PayloadType:%q}",
			got.ID, got.Name, got.CreatedAt, got.TimeSource, got.InquiryID, got.PayloadType,
			want.ID, want.Name, want.CreatedAt, wantSource, want.InquiryID, want.PayloadType)
	}
	if !slices.Equal(got.RelatedInquiryIDs, want.RelatedInquiryIDs) {
		t.Errorf("RelatedInquiryIDs = %v, want %v", got.RelatedInquiryIDs, want.RelatedInquiryIDs)
	}
	if got.AboutInquiry() != (want.InquiryID != "") {
		t.Errorf("AboutInquiry = %v with inquiry id %q", got.AboutInquiry(), got.InquiryID)
	}
	switch {
	case got.Inquiry == nil && want.Inquiry == nil:
	case got.Inquiry == nil || want.Inquiry == nil:
		t.Errorf("inquiry = %+v, want %+v", got.Inquiry, want.Inquiry)
	default:
		g, w := *got.Inquiry, *want.Inquiry
		for _, p := range []struct {
			name      string
			got, want time.Time
		}{
			{"CreatedAt", g.CreatedAt, w.CreatedAt}, {"StartedAt", g.StartedAt, w.StartedAt},
			{"CompletedAt", g.CompletedAt, w.CompletedAt}, {"FailedAt", g.FailedAt, w.FailedAt},
			{"ExpiredAt", g.ExpiredAt, w.ExpiredAt}, {"RedactedAt", g.RedactedAt, w.RedactedAt},
			{"ExpiresAt", g.ExpiresAt, w.ExpiresAt},
		} {
			if !p.got.Equal(p.want) {
				t.Errorf("inquiry %s = %v, want %v", p.name, p.got, p.want)
			}
		}
		g.CreatedAt, g.StartedAt, g.CompletedAt, g.FailedAt, g.ExpiredAt, g.RedactedAt, g.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
		w.CreatedAt, w.StartedAt, w.CompletedAt, w.FailedAt, w.ExpiredAt, w.RedactedAt, w.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if g != w {
			t.Errorf("inquiry = %+v, want %+v", g, w)
		}
	}
}

// rekey rewrites every object key of a JSON document with key, leaving values alone, as
// Persona's Key-Inflection setting does.
func rekey(t *testing.T, body []byte, key func(string) string) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decode fixture: %v", err)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(v))
			for k, e := range v {
				out[key(k)] = walk(e)
			}
			return out
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
			return v
		}
		return v
	}
	out, err := json.Marshal(walk(doc))
	if err != nil {
		t.Fatalf("encode fixture: %v", err)
	}
	return out
}

// words splits a key in any of the three inflections into lowercase words.
func words(k string) []string {
	var ws []string
	var cur strings.Builder
	for _, r := range k {
		switch {
		case r == '-' || r == '_':
			ws, cur = append(ws, cur.String()), strings.Builder{}
		case 'A' <= r && r <= 'Z':
			ws, cur = append(ws, cur.String()), strings.Builder{}
			cur.WriteRune(r + 'a' - 'A')
		default:
			cur.WriteRune(r)
		}
	}
	return append(ws, cur.String())
}

func toKebab(k string) string { return strings.Join(words(k), "-") }
func toSnake(k string) string { return strings.Join(words(k), "_") }
func toCamel(k string) string {
	ws := words(k)
	for i := 1; i < len(ws); i++ {
		if ws[i] != "" {
			ws[i] = strings.ToUpper(ws[i][:1]) + ws[i][1:]
		}
	}
	return strings.Join(ws, "")
}

// TestEventObject: the object kinds of PERSONA.md §4, and a bounded answer for anything else.
func TestEventObject(t *testing.T) {
	for name, want := range map[string]string{
		"inquiry.started": "inquiry", "inquiry-session.expired": "inquiry-session",
		"verification.passed": "verification", "document.submitted": "document",
		"account.created": "account", "case.status-updated": "case",
		"report/watchlist.ready": "report", "transaction.created": "transaction",
		"selfie.created": persona.ObjectOther, "": persona.ObjectOther, "inquiry": "inquiry",
		"inquiryx.started": persona.ObjectOther,
	} {
		if got := persona.EventObject(name); got != want {
			t.Errorf("EventObject(%q) = %q, want %q", name, got, want)
		}
	}
	if all := persona.EventObjects(); len(all) != 9 || all[len(all)-1] != persona.ObjectOther {
		t.Errorf("EventObjects() = %v", all)
	}
}

// TestParseEventLocaleField reads the inquiry field RESUMER_LOCALE_FIELD names, as a field
// value object, a plain field string or a plain attribute, in any key inflection; nothing
// without the option; a value too long to be a locale is dropped.
func TestParseEventLocaleField(t *testing.T) {
	body := func(attrs string) []byte {
		return []byte(`{"data":{"type":"event","id":"evt_1","attributes":{"name":"inquiry.started",` +
			`"created-at":"2026-01-06T10:00:00Z","payload":{"data":{"type":"inquiry","id":"inq_1",` +
			`"attributes":{"status":"pending",` + attrs + `}}}}}}`)
	}
	for _, tc := range []struct {
		name, attrs, field, want string
	}{
		{"field value", `"fields":{"locale":{"type":"string","value":"es-MX"}}`, "locale", "es-MX"},
		{"kebab field, camel body", `"fields":{"addressCountryCode":{"type":"string","value":"AT"}}`, "address-country-code", "AT"},
		{"plain attribute", `"locale":"de"`, "locale", "de"},
		{"not asked", `"fields":{"locale":{"value":"es"}}`, "", ""},
		{"absent", `"fields":{}`, "locale", ""},
		{"too long", `"locale":"` + strings.Repeat("x", persona.MaxLocaleLen+1) + `"`, "locale", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := persona.ParseEventWith(body(tc.attrs), persona.ParseOptions{LocaleField: tc.field})
			if err != nil {
				t.Fatal(err)
			}
			if ev.Inquiry.Locale != tc.want {
				t.Errorf("Locale %q, want %q", ev.Inquiry.Locale, tc.want)
			}
		})
	}
}
