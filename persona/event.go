package persona

import (
	"errors"
	"fmt"
	"log/slog"
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
	// UpdatedAt is when Persona last changed the inquiry (zero when not sent); reconciliation
	// orders the differences it finds by it.
	UpdatedAt time.Time
	// EmailAddress and NameFirst come from the inquiry's fields; they are personal data and
	// must never reach a log line or a metric label.
	EmailAddress string
	NameFirst    string
}

// ParseEvent decodes a webhook body. It accepts kebab-case, camelCase and snake_case keys and
// tolerates nulls and missing optional fields. The event id, name, created-at and an inquiry
// id are required; without them, or when body is not a JSON object, the error wraps
// ErrMalformedEvent.
func ParseEvent(body []byte) (*Event, error) { return parseEvent(body, true) }

// ParseEnvelope is ParseEvent without the inquiry: it checks the body exactly as ParseEvent
// does, accepts and refuses the same bodies, and returns the same Event except that Inquiry
// is nil. It is for code that only routes an event (the webhook receiver), and saves it
// reading the inquiry's attributes.
func ParseEnvelope(body []byte) (*Event, error) { return parseEvent(body, false) }

func parseEvent(body []byte, inquiry bool) (*Event, error) {
	root, err := decodeObject(body)
	if err != nil {
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
		switch {
		case ev.PayloadType == "inquiry" && inquiry:
			ev.Inquiry = decodeInquiry(subject)
			ev.InquiryID = ev.Inquiry.ID
		case ev.PayloadType == "inquiry":
			ev.InquiryID = subject.str("id") // as decodeInquiry reads it
		default:
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
	inq.UpdatedAt = attrs.time("updated-at")
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
