package persona

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// ErrMalformedEvent is wrapped by every error ParseEvent returns: the body is not JSON or not
// a Persona event envelope at all (no data object of type event with an id, attributes and a
// name). Persona never sends such a body, so it is never worth retrying.
var ErrMalformedEvent = errors.New("malformed persona event")

// TimeSource says where an Event's CreatedAt came from.
type TimeSource string

// The sources of an event's time.
const (
	// TimeFromEvent: the event's own data.attributes.created-at.
	TimeFromEvent TimeSource = "created_at"
	// TimeFromUpdatedAt: the event has no usable created-at (some of Persona's published
	// samples omit it, PERSONA.md §3); the payload object's updated-at stands in.
	TimeFromUpdatedAt TimeSource = "updated_at"
	// TimeUnknown: neither; CreatedAt is zero and the caller supplies a time (the webhook
	// receiver its receive time, which it passes on with the stored event).
	TimeUnknown TimeSource = ""
)

// maxRelatedInquiries caps Event.RelatedInquiryIDs.
const maxRelatedInquiries = 50

// Event is one Persona webhook event (PERSONA.md §3), reduced to what resumer uses.
type Event struct {
	// ID is the event id (evt_...), stable across Persona's delivery retries.
	ID string
	// Name is the event name, e.g. "inquiry.started"; unknown names are kept as they are.
	Name string
	// CreatedAt is the event time; events are ordered by it, never by arrival. Zero when
	// TimeSource is TimeUnknown.
	CreatedAt time.Time
	// TimeSource says where CreatedAt came from.
	TimeSource TimeSource
	// InquiryID is the inquiry whose record the event may change: the payload's id for an
	// inquiry payload, or the "inquiry" relationship of a payload that is part of an
	// inquiry (an inquiry session, a verification, a document; PERSONA.md §4). Empty for
	// events about other objects (accounts, cases, reports, transactions, parts without an
	// inquiry): see AboutInquiry.
	InquiryID string
	// RelatedInquiryIDs are the inquiries an event about another object names, for an
	// operator's eyes only: a case's "inquiries" relationship (plural), a report's
	// "inquiry". At most the first 50; nil for inquiry events.
	RelatedInquiryIDs []string
	// PayloadType is the JSON:API type of the payload ("inquiry", "inquiry-session", ...).
	PayloadType string
	// Inquiry is the inquiry as the event carries it; nil unless PayloadType is "inquiry"
	// (and always nil from ParseEnvelope).
	Inquiry *Inquiry
}

// AboutInquiry reports whether the event is about an inquiry or one of its parts, so that
// it may change that inquiry's record (InquiryID is set). Other events are stored for an
// operator but never applied.
func (e *Event) AboutInquiry() bool { return e.InquiryID != "" }

// partOfInquiry reports whether a payload of this JSON:API type is a part of an inquiry
// (PERSONA.md §4): an inquiry session, a verification or a document, of any subtype
// ("verification/government-id"), in any key inflection.
func partOfInquiry(payloadType string) bool {
	kind, _, _ := strings.Cut(payloadType, "/")
	switch strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(kind, "_", ""), "-", "")) {
	case "inquirysession", "verification", "document":
		return true
	}
	return false
}

// Inquiry is a Persona inquiry's attributes that resumer tracks. Zero times mean that Persona
// sent null or nothing.
type Inquiry struct {
	ID          string
	Status      Status
	ReferenceID string
	TemplateID  string
	// TemplateVersionID is the inquiry template version the inquiry was created from (the
	// inquiry-template-version relationship); empty when Persona did not say.
	TemplateVersionID string
	AccountID         string
	CreatedAt         time.Time
	StartedAt         time.Time
	CompletedAt       time.Time
	FailedAt          time.Time
	ExpiredAt         time.Time
	RedactedAt        time.Time
	ExpiresAt         time.Time
	// UpdatedAt is when Persona last changed the inquiry (zero when not sent); reconciliation
	// orders the differences it finds by it.
	UpdatedAt time.Time
	// EmailAddress and NameFirst come from the inquiry's fields; they are personal data and
	// must never reach a log line or a metric label.
	EmailAddress string
	NameFirst    string
	// Locale is the value of the inquiry field ParseOptions.LocaleField names (a language
	// tag or a country code, as the template collects it), at most MaxLocaleLen bytes;
	// empty when not asked for or not there.
	Locale string
}

// MaxLocaleLen caps Inquiry.Locale: language tags and country codes are short, and a longer
// value is not one.
const MaxLocaleLen = 35

// ParseOptions adjust ParseEventWith.
type ParseOptions struct {
	// LocaleField names the inquiry field (kebab-case, as in the template: "locale",
	// "address-country-code") whose value becomes Inquiry.Locale; empty reads none.
	LocaleField string
}

// ParseEventWith is ParseEvent that also reads what opts ask for.
func ParseEventWith(body []byte, opts ParseOptions) (*Event, error) {
	return parseEvent(body, true, opts)
}

// localeOf reads the field name of an inquiry resource: from its fields (a value object or a
// plain string), else a plain attribute; "" when absent or longer than MaxLocaleLen.
func localeOf(res object, name string) string {
	attrs, _ := res.object("attributes")
	if attrs == nil {
		return ""
	}
	v := ""
	if fields, _ := attrs.object("fields"); fields != nil {
		v = fields.fieldValue(name)
	}
	if v == "" {
		v = attrs.str(name)
	}
	if v = strings.TrimSpace(v); len(v) > MaxLocaleLen {
		return ""
	}
	return v
}

// ParseEvent decodes a webhook body. It accepts kebab-case, camelCase and snake_case keys and
// tolerates nulls and missing optional fields. Only the envelope is required: a JSON object
// whose data is of type event with an id, attributes and a name; without it the error wraps
// ErrMalformedEvent. Everything else Persona may send is accepted (PERSONA.md §2: a refusal
// is a retry storm): an event about another object has no InquiryID, and an event without a
// usable created-at takes the payload object's updated-at, or none (see TimeSource).
func ParseEvent(body []byte) (*Event, error) { return parseEvent(body, true, ParseOptions{}) }

// ParseEnvelope is ParseEvent without the inquiry: it checks the body exactly as ParseEvent
// does, accepts and refuses the same bodies, and returns the same Event except that Inquiry
// is nil. It is for code that only routes an event (the webhook receiver), and saves it
// reading the inquiry's attributes.
func ParseEnvelope(body []byte) (*Event, error) { return parseEvent(body, false, ParseOptions{}) }

func parseEvent(body []byte, inquiry bool, opts ParseOptions) (*Event, error) {
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
	if ev.CreatedAt = attrs.time("created-at"); !ev.CreatedAt.IsZero() {
		ev.TimeSource = TimeFromEvent
	}
	payload, _ := attrs.object("payload")
	var subject object
	if payload != nil {
		subject, _ = payload.object("data")
	}
	if subject == nil {
		return ev, nil
	}
	if ev.CreatedAt.IsZero() {
		if sa, _ := subject.object("attributes"); sa != nil {
			if ev.CreatedAt = sa.time("updated-at"); !ev.CreatedAt.IsZero() {
				ev.TimeSource = TimeFromUpdatedAt
			}
		}
	}
	ev.PayloadType = subject.str("type")
	switch {
	case ev.PayloadType == "inquiry":
		ev.InquiryID = subject.str("id") // as decodeInquiry reads it
		if inquiry && ev.InquiryID != "" {
			ev.Inquiry = decodeInquiry(subject)
			if opts.LocaleField != "" {
				ev.Inquiry.Locale = localeOf(subject, opts.LocaleField)
			}
		}
	case partOfInquiry(ev.PayloadType):
		ev.InquiryID = relationshipID(subject, "inquiry")
	default:
		// Another object (PERSONA.md §4): a report names an inquiry (or null), a case
		// lists its inquiries under "inquiries".
		if id := relationshipID(subject, "inquiry"); id != "" {
			ev.RelatedInquiryIDs = []string{id}
		}
		ev.RelatedInquiryIDs = appendRelationshipIDs(ev.RelatedInquiryIDs, subject, "inquiries", maxRelatedInquiries)
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
	inq.TemplateVersionID = relationshipID(res, "inquiry-template-version")
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

// appendRelationshipIDs appends the ids of res.relationships.<name>.data, a list, to ids,
// up to max ids in all.
func appendRelationshipIDs(ids []string, res object, name string, max int) []string {
	rels, _ := res.object("relationships")
	if rels == nil {
		return ids
	}
	rel, _ := rels.object(name)
	if rel == nil {
		return ids
	}
	list, _ := rel.objects("data")
	for _, d := range list {
		if len(ids) >= max {
			break
		}
		if id := d.str("id"); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
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
