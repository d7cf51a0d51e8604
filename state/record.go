package state

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/resumer/resumer/persona"
)

// Field names of the record hash. They are short on purpose: a pending inquiry's record must
// stay a small listpack (see BenchmarkMemoryPerInquiry). apply.lua uses the same names.
const (
	fieldStatus      = "s"  // status, as Persona reports it (unknown values too)
	fieldStatusAt    = "sa" // event time (unix ms) of the newest event that set the status
	fieldReference   = "r"  // reference id
	fieldTemplate    = "t"  // inquiry template id
	fieldAccount     = "a"  // account id
	fieldCreatedAt   = "c"  // inquiry created-at (unix ms)
	fieldStartedAt   = "st" // inquiry started-at (unix ms)
	fieldCompletedAt = "ca" // inquiry completed-at (unix ms)
	fieldExpiredAt   = "xa" // inquiry expired-at (unix ms)
	fieldExpiresAt   = "x"  // effective expires-at (unix ms), from the payload or derived
	fieldDerived     = "xd" // "1" when x was derived from the template interval
	fieldLastEventID = "le" // id of the newest event (by event time, then id)
	fieldLastName    = "ln" // name of that event
	fieldLastAt      = "lt" // event time (unix ms) of that event
	fieldEmail       = "em" // e-mail address; only while created/pending
	fieldNameFirst   = "nf" // first name; only while created/pending
	fieldEvents      = "e"  // remembered event ids: 10-byte entries, see apply.lua
	fieldUpdatedAt   = "u"  // store clock (unix ms) of the last change to inquiry data
	fieldReminders   = "rm" // reminder stages done, comma separated, and stage@channel marks
	fieldLease       = "ls" // token of the notifier's lease on the record, while one is held
	fieldAttempts    = "ra" // transient failures of the current reminder (Store.ReleaseClaim)
	fieldDropped     = "rd" // why the notifier dropped the schedule (Store.DropReminders)
)

// Inquiry is the record the store keeps for one inquiry. Zero times mean unknown. E-mail
// address and first name are personal data: they are only kept while the inquiry is created
// or pending and must never reach a log line or a metric label.
type Inquiry struct {
	ID          string
	Status      persona.Status // empty when no event has told the status yet
	ReferenceID string
	TemplateID  string
	AccountID   string
	CreatedAt   time.Time
	StartedAt   time.Time
	CompletedAt time.Time
	ExpiredAt   time.Time
	// ExpiresAt is when the inquiry expires: the newest expires-at Persona sent, else derived
	// from the template's interval (created: created-at + interval; pending: started-at +
	// interval, falling back to created-at); ExpiresAtDerived tells which.
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
	// RemindersSent lists the reminder stages already done (sent, or skipped for good), in
	// the order they were done; while a stage is being retried it may also list
	// "<stage>@<channel>" for the channels already done with it.
	RemindersSent []string
	// RemindersDropped says why the notifier stopped reminding this inquiry
	// (Store.DropReminders); empty unless dropped, and cleared when an event schedules the
	// inquiry again.
	RemindersDropped string
}

// decodeInquiry turns a record hash into an Inquiry. A time field that is not an integer is
// an error: the record was not written by this package.
func decodeInquiry(id string, h map[string]string) (*Inquiry, error) {
	inq := &Inquiry{
		ID:               id,
		Status:           persona.Status(h[fieldStatus]),
		ReferenceID:      h[fieldReference],
		TemplateID:       h[fieldTemplate],
		AccountID:        h[fieldAccount],
		ExpiresAtDerived: h[fieldDerived] == "1",
		LastEventID:      h[fieldLastEventID],
		LastEventName:    h[fieldLastName],
		EmailAddress:     h[fieldEmail],
		NameFirst:        h[fieldNameFirst],
		RemindersDropped: h[fieldDropped],
	}
	if rm := h[fieldReminders]; rm != "" {
		inq.RemindersSent = strings.Split(rm, ",")
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{
		{fieldCreatedAt, &inq.CreatedAt},
		{fieldStartedAt, &inq.StartedAt},
		{fieldCompletedAt, &inq.CompletedAt},
		{fieldExpiredAt, &inq.ExpiredAt},
		{fieldExpiresAt, &inq.ExpiresAt},
		{fieldStatusAt, &inq.StatusAt},
		{fieldUpdatedAt, &inq.UpdatedAt},
	} {
		raw, ok := h[f.name]
		if !ok || raw == "" {
			continue
		}
		ms, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("decode inquiry %s: field %s: %w", id, f.name, err)
		}
		*f.dst = time.UnixMilli(ms).UTC()
	}
	return inq, nil
}

// unixMilli formats t as decimal unix milliseconds, "" for the zero time.
func unixMilli(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}
