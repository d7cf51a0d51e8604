package persona

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// ErrMalformedEvent is wrapped by every error ParseEvent returns: the body is not JSON, not a
// Persona event envelope, or lacks a field no event can be processed without. Such a body is
// never worth retrying.
var ErrMalformedEvent = errors.New("malformed persona event")

// Event is one Persona webhook event (PERSONA.md §3), reduced to what resumer uses.
type Event struct {
	// ID is the event id (evt_...), stable across Persona's delivery retries.
	ID string
	// Name is the event name, e.g. "inquiry.started"; unknown names are kept as they are.
	Name string
	// CreatedAt is the event time; events are ordered by it, never by arrival.
	CreatedAt time.Time
	// InquiryID is the inquiry the event is about: the payload's id for inquiry payloads,
	// else the payload's "inquiry" relationship.
	InquiryID string
	// PayloadType is the JSON:API type of the payload ("inquiry", "inquiry-session", ...).
	PayloadType string
	// Inquiry is the inquiry as the event carries it; nil unless PayloadType is "inquiry".
	Inquiry *Inquiry
}

// Inquiry is a Persona inquiry's attributes that resumer tracks. Zero times mean that Persona
// sent null or nothing.
type Inquiry struct {
	ID          string
	Status      Status
	ReferenceID string
	TemplateID  string
	AccountID   string
	CreatedAt   time.Time
	StartedAt   time.Time
	CompletedAt time.Time
	FailedAt    time.Time
	ExpiredAt   time.Time
	RedactedAt  time.Time
	ExpiresAt   time.Time
	// EmailAddress and NameFirst come from the inquiry's fields; they are personal data and
	// must never reach a log line or a metric label.
	EmailAddress string
	NameFirst    string
}

// ParseEvent decodes a webhook body. It accepts kebab-case, camelCase and snake_case keys and
// tolerates nulls and missing optional fields. The event id, name, created-at and an inquiry
// id are required; without them, or when body is not a JSON object, the error wraps
// ErrMalformedEvent.
func ParseEvent(body []byte) (*Event, error) {
	var root object
	if err := json.Unmarshal(body, &root); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	data, err := root.object("data")
	if err != nil || data == nil {
		return nil, fmt.Errorf("%w: no data object", ErrMalformedEvent)
	}
	if typ := data.str("type"); typ != "" && typ != "event" {
		return nil, fmt.Errorf("%w: data.type is %q, not event", ErrMalformedEvent, typ)
	}
	ev := &Event{ID: data.str("id")}
	if ev.ID == "" {
		return nil, fmt.Errorf("%w: missing data.id", ErrMalformedEvent)
	}
	attrs, err := data.object("attributes")
	if err != nil || attrs == nil {
		return nil, fmt.Errorf("%w: missing data.attributes", ErrMalformedEvent)
	}
	if ev.Name = attrs.str("name"); ev.Name == "" {
		return nil, fmt.Errorf("%w: missing data.attributes.name", ErrMalformedEvent)
	}
	raw := attrs.str("created-at")
	if raw == "" {
		return nil, fmt.Errorf("%w: missing data.attributes.created-at", ErrMalformedEvent)
	}
	if ev.CreatedAt, err = time.Parse(time.RFC3339Nano, raw); err != nil {
		return nil, fmt.Errorf("%w: data.attributes.created-at: %v", ErrMalformedEvent, err)
	}
	payload, _ := attrs.object("payload")
	var subject object
	if payload != nil {
		subject, _ = payload.object("data")
	}
	if subject != nil {
		ev.PayloadType = subject.str("type")
		if ev.PayloadType == "inquiry" {
			ev.Inquiry = decodeInquiry(subject)
			ev.InquiryID = ev.Inquiry.ID
		} else {
			ev.InquiryID = relationshipID(subject, "inquiry")
		}
	}
	if ev.InquiryID == "" {
		return nil, fmt.Errorf("%w: no inquiry id in the payload", ErrMalformedEvent)
	}
	return ev, nil
}

// decodeInquiry reads an inquiry resource object (data of an inquiry payload or of an API
// response). Values of the wrong type are treated as absent.
func decodeInquiry(res object) *Inquiry {
	inq := &Inquiry{ID: res.str("id")}
	attrs, _ := res.object("attributes")
	if attrs == nil {
		attrs = object{}
	}
	inq.Status = Status(attrs.str("status"))
	inq.ReferenceID = attrs.str("reference-id")
	inq.CreatedAt = attrs.time("created-at")
	inq.StartedAt = attrs.time("started-at")
	inq.CompletedAt = attrs.time("completed-at")
	inq.FailedAt = attrs.time("failed-at")
	inq.ExpiredAt = attrs.time("expired-at")
	inq.RedactedAt = attrs.time("redacted-at")
	inq.ExpiresAt = attrs.time("expires-at")
	inq.TemplateID = relationshipID(res, "inquiry-template")
	if inq.TemplateID == "" {
		inq.TemplateID = relationshipID(res, "template")
	}
	inq.AccountID = relationshipID(res, "account")
	if fields, _ := attrs.object("fields"); fields != nil {
		inq.EmailAddress = fields.fieldValue("email-address")
		inq.NameFirst = fields.fieldValue("name-first")
	}
	// Older API versions carry these as plain attributes.
	if inq.EmailAddress == "" {
		inq.EmailAddress = attrs.str("email-address")
	}
	if inq.NameFirst == "" {
		inq.NameFirst = attrs.str("name-first")
	}
	return inq
}

// relationshipID returns res.relationships.<name>.data.id, or "".
func relationshipID(res object, name string) string {
	rels, _ := res.object("relationships")
	if rels == nil {
		return ""
	}
	rel, _ := rels.object(name)
	if rel == nil {
		return ""
	}
	data, _ := rel.object("data")
	if data == nil {
		return ""
	}
	return data.str("id")
}

// object is a decoded JSON object whose keys may be in any of Persona's three inflections.
// Lookups take the kebab-case name and try the other two spellings. A body is decoded once
// into nested objects; lookups never re-parse.
type object map[string]any

func (o object) get(kebab string) any {
	if v, ok := o[kebab]; ok {
		return v
	}
	if !strings.Contains(kebab, "-") {
		return nil
	}
	if v, ok := o[strings.ReplaceAll(kebab, "-", "_")]; ok {
		return v
	}
	return o[camel(kebab)]
}

// errNotObject reports a value that should be a JSON object but is something else.
var errNotObject = errors.New("not a JSON object")

// object returns the nested object at key; nil with no error when absent or null, and an
// error when it is another kind of value.
func (o object) object(key string) (object, error) {
	switch v := o.get(key).(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return object(v), nil
	default:
		return nil, fmt.Errorf("%s: %w", key, errNotObject)
	}
}

// objects returns the array of objects at key (entries that are not objects are skipped);
// nil with no error when absent or null.
func (o object) objects(key string) ([]object, error) {
	switch v := o.get(key).(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]object, 0, len(v))
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				out = append(out, object(m))
			}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%s: not an array", key)
	}
}

// str returns the string at key; "" when absent, null or not a string.
func (o object) str(key string) string {
	s, _ := o.get(key).(string)
	return s
}

// time returns the RFC 3339 time at key; zero when absent, null or unparseable (Persona's own
// samples are inconsistent, PERSONA.md §3).
func (o object) time(key string) time.Time {
	s := o.str(key)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// fieldValue reads an inquiry field, which Persona wraps as {"type": ..., "value": ...}; a
// bare string is accepted too.
func (o object) fieldValue(key string) string {
	if s := o.str(key); s != "" {
		return s
	}
	f, _ := o.object(key)
	if f == nil {
		return ""
	}
	return f.str("value")
}

// camel turns "email-address" into "emailAddress".
func camel(kebab string) string {
	var b strings.Builder
	b.Grow(len(kebab))
	up := false
	for i := 0; i < len(kebab); i++ {
		c := kebab[i]
		if c == '-' {
			up = true
			continue
		}
		if up && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up = false
		b.WriteByte(c)
	}
	return b.String()
}

// LogValue keeps an inquiry's personal data (e-mail address, first name) out of logs: slog
// prints only its id, status and reference.
func (i *Inquiry) LogValue() slog.Value {
	if i == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(
		slog.String("id", i.ID),
		slog.String("status", string(i.Status)),
		slog.String("reference_id", i.ReferenceID),
	)
}
