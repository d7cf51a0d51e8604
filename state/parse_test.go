package state

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// envelope is a Persona webhook body (PERSONA.md §3) in kebab-case.
func envelope(id, name string, at time.Time, status string, expiresAt any) map[string]any {
	return map[string]any{"data": map[string]any{
		"type": "event", "id": id,
		"attributes": map[string]any{
			"name": name, "created-at": at.Format(time.RFC3339Nano),
			"payload": map[string]any{"data": map[string]any{
				"type": "inquiry", "id": "inq_json",
				"attributes": map[string]any{
					"status": status, "reference-id": "user-9",
					"created-at": t0.Format(time.RFC3339Nano), "started-at": nil,
					"expires-at": expiresAt, "completed-at": nil,
					"fields": map[string]any{
						"email-address": map[string]any{"type": "string", "value": "max@example.com"},
						"name-first":    map[string]any{"type": "string", "value": "Max"},
					},
				},
				"relationships": map[string]any{
					"inquiry-template": map[string]any{"data": map[string]any{"type": "inquiry-template", "id": "itmpl_short"}},
					"account":          map[string]any{"data": map[string]any{"type": "account", "id": "act_9"}},
				},
			}},
		},
	}}
}

// inflect renames every key of v with rename (values stay as they are).
func inflect(v any, rename func(string) string) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[rename(k)] = inflect(x, rename)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = inflect(x, rename)
		}
		return out
	}
	return v
}

func camel(k string) string {
	parts := strings.Split(k, "-")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

func snake(k string) string { return strings.ReplaceAll(k, "-", "_") }

// TestApplyParsedBodies applies the same events parsed from kebab-, camel- and snake-case
// bodies (PERSONA.md §3, Key-Inflection) and expects the same record.
func TestApplyParsedBodies(t *testing.T) {
	bodies := []map[string]any{
		envelope("evt_j1", "inquiry.created", t0, "created", nil),
		envelope("evt_j2", "inquiry.transitioned", t0.Add(time.Minute), "created", t0.Add(3*time.Hour).Format(time.RFC3339Nano)),
	}
	want := Inquiry{ID: "inq_json", Status: persona.StatusCreated, ReferenceID: "user-9", TemplateID: "itmpl_short",
		AccountID: "act_9", CreatedAt: t0, ExpiresAt: t0.Add(3 * time.Hour), StatusAt: t0.Add(time.Minute),
		LastEventID: "evt_j2", LastEventName: "inquiry.transitioned", EmailAddress: "max@example.com", NameFirst: "Max"}
	for _, style := range []struct {
		name   string
		rename func(string) string
	}{{"kebab", func(k string) string { return k }}, {"camel", camel}, {"snake", snake}} {
		t.Run(style.name, func(t *testing.T) {
			f := newFixture(t)
			for _, b := range bodies {
				raw, err := json.Marshal(inflect(b, style.rename))
				if err != nil {
					t.Fatal(err)
				}
				e, err := persona.ParseEvent(raw)
				if err != nil {
					t.Fatalf("ParseEvent: %v", err)
				}
				if o := f.apply(t, e); o != OutcomeApplied {
					t.Errorf("%s: outcome %q, want applied", e.ID, o)
				}
			}
			got := f.inquiry(t, "inq_json")
			w := want
			w.UpdatedAt = f.clock.Now()
			if !reflect.DeepEqual(*got, w) {
				t.Errorf("record\n got %+v\nwant %+v", *got, w)
			}
		})
	}
}
