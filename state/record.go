package state

import (
	"fmt"
	"strconv"
	"time"

	"github.com/resumer/resumer/persona"
)

// Field names of a record: the keys of the scripts' decoded records, in stored order (see
// lib.lua for the format, which decodeRecord mirrors). A record is stored as one packed string
// in its shard's records hash.
const (
	fieldLastAt       = "lt" // event time (unix ms) of the newest event; other times are relative to it
	fieldStatus       = "s"  // status, as Persona reports it (unknown values too)
	fieldStatusAt     = "sa" // event time (unix ms) of the newest event that set the status
	fieldReference    = "r"  // reference id
	fieldTemplate     = "t"  // inquiry template id: the shard's code for it (see intern in lib.lua)
	fieldAccount      = "a"  // account id (packed, see packID)
	fieldCreatedAt    = "c"  // inquiry created-at (unix ms)
	fieldStartedAt    = "st" // inquiry started-at (unix ms)
	fieldExpiresAt    = "x"  // effective expires-at (unix ms), from the payload or derived
	fieldLastEventID  = "le" // id of the newest event (by event time, then id; packed)
	fieldLastName     = "ln" // name of that event (packed, see packEventName)
	fieldEmail        = "em" // e-mail address; only while created/pending
	fieldNameFirst    = "nf" // first name; only while created/pending
	fieldUpdatedAt    = "u"  // store clock (unix ms) of the last change to inquiry data
	fieldEvents       = "e"  // remembered event ids: digest and the second they were seen
	fieldCompletedAt  = "ca" // inquiry completed-at (unix ms)
	fieldExpiredAt    = "xa" // inquiry expired-at (unix ms)
	fieldExpirySource = "xd" // true when x was derived from the template interval, else the event time of the event that carried x (absent: sa)
	fieldReminders    = "rm" // reminder stages done, comma separated, and stage@channel marks
	fieldAttempts     = "ra" // transient failures of the current reminder (Store.ReleaseClaim)
	fieldDropped      = "rd" // why the notifier dropped the schedule (Store.DropReminders)
	fieldFunnel       = "fa" // funnel attribution of the last reminder (see funnel.go)
	// fieldTemplateVersion is the inquiry template version: the shard's code for it, like
	// fieldTemplate.
	fieldTemplateVersion = "tv"
	fieldLocale          = "lc" // the inquiry's locale field (RESUMER_LOCALE_FIELD), as carried
)

// Inquiry is the record the store keeps for one inquiry. Zero times mean unknown. E-mail
// address and first name are personal data: they are only kept while the inquiry is created
// or pending and must never reach a log line or a metric label.
type Inquiry struct {
	ID          string
	Status      persona.Status // empty when no event has told the status yet
	ReferenceID string
	TemplateID  string
	// TemplateVersionID is the inquiry template version the inquiry was created from, when
	// an event told it (the inquiry-template-version relationship).
	TemplateVersionID string
	AccountID         string
	CreatedAt         time.Time
	StartedAt         time.Time
	CompletedAt       time.Time
	ExpiredAt         time.Time
	// ExpiresAt is when the inquiry expires: the expires-at carried by the newest event (in
	// event time) that carried one, which may be earlier than an older event's (PERSONA.md
	// §5); else derived from the template's interval (created: created-at + interval;
	// pending: started-at + interval, falling back to created-at); ExpiresAtDerived tells
	// which.
	ExpiresAt        time.Time
	ExpiresAtDerived bool
	// StatusAt is the event time of the newest event that set the current status.
	StatusAt time.Time
	// UpdatedAt is the store's clock when an event last changed the inquiry's data.
	UpdatedAt time.Time
	// LastEventID and LastEventName are the newest event applied (by event time, ties by id),
	// of any kind.
	LastEventID   string
	LastEventName string
	EmailAddress  string
	NameFirst     string
	// Locale is the value of the inquiry field RESUMER_LOCALE_FIELD names, as the newest
	// event that carried it said it; empty when not configured or not carried.
	Locale string
	// RemindersSent lists the reminder stages already done (sent, or skipped for good), in
	// the order they were done; while a stage is being retried it may also list
	// "<stage>@<channel>" for the channels already done with it.
	RemindersSent []string
	// RemindersDropped says why the notifier stopped reminding this inquiry
	// (Store.DropReminders); empty unless dropped, and cleared when an event schedules the
	// inquiry again.
	RemindersDropped string
}

// decodeInquiry turns the stored record of the inquiry with the given handle into an Inquiry;
// template is its template id (looked up by the code the record keeps).
func decodeInquiry(handle, raw, template, version string) (*Inquiry, error) {
	var r record
	if err := decodeRecord(raw, &r); err != nil {
		return nil, fmt.Errorf("decode inquiry with handle %x: %w", handle, err)
	}
	return &Inquiry{
		ID:                joinID(handle, r.rest),
		Status:            persona.Status(r.str[idxStatus]),
		ReferenceID:       r.str[idxReference],
		TemplateID:        template,
		TemplateVersionID: version,
		AccountID:         unpackID(r.str[idxAccount]),
		CreatedAt:         r.time(idxCreatedAt),
		StartedAt:         r.time(idxStartedAt),
		CompletedAt:       r.time(idxCompletedAt),
		ExpiredAt:         r.time(idxExpiredAt),
		ExpiresAt:         r.time(idxExpiresAt),
		ExpiresAtDerived:  r.derived,
		StatusAt:          r.time(idxStatusAt),
		UpdatedAt:         r.time(idxUpdatedAt),
		LastEventID:       unpackID(r.str[idxLastEventID]),
		LastEventName:     unpackEventName(r.str[idxLastName]),
		EmailAddress:      r.str[idxEmail],
		NameFirst:         r.str[idxNameFirst],
		Locale:            r.str[idxLocale],
		RemindersSent:     r.reminders(),
		RemindersDropped:  r.str[idxDropped],
	}, nil
}

// unixMilli formats t as decimal unix milliseconds, "" for the zero time.
func unixMilli(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}
