package notify

import (
	"context"
	"errors"
	"fmt"
	"github.com/resumer/resumer/state"
	"time"
)

// ErrNoContact is returned, with retry false, by a channel that cannot reach the user because
// the reminder carries no contact for it (the e-mail channel without an e-mail address). The
// scheduler counts it as the no_contact outcome and never retries it.
var ErrNoContact = errors.New("no contact for the reminder channel")

// ErrUndeliverable is returned, with retry false, by the e-mail channel for an address it
// must not send to as it is: a domain that is not a valid internationalized domain name, or a
// local part with non-ASCII characters when the server does not offer SMTPUTF8 (sending it
// raw would put 8-bit bytes into RCPT TO and To:). The scheduler counts it as the
// undeliverable outcome and never retries it. The error never contains the address.
var ErrUndeliverable = errors.New("address undeliverable")

// ErrMaybeDelivered is returned, with retry false, by a channel whose attempt failed after the
// reminder had been handed over, so that it may well have reached the user: the e-mail
// channel's whole message, end of data included, went to the SMTP server and no reply came
// back (the connection broke, or the time ran out while the server held the reply). Sending
// it again could deliver it twice, so the scheduler records the stage as done for the
// channel, counts it as the uncertain outcome and never retries it.
var ErrMaybeDelivered = errors.New("reminder may have been delivered: no reply after it was handed over")

// ErrInvalidReminder is returned, with retry false, for a reminder that cannot be delivered as
// it is: no inquiry id, stage, expiry or link, or an e-mail address that does not parse. The error wrapping
// it names the field, never its value.
var ErrInvalidReminder = errors.New("invalid reminder")

// Channel delivers reminders: an e-mail to the user (EmailChannel) or a call to the customer's
// webhook (WebhookChannel). It follows Alertmanager's notifier model: Send reports in retry
// whether trying the same reminder again later may succeed (a 4xx SMTP reply, a 503, a
// timeout) or is pointless (a rejected address, a template error, ErrNoContact). The caller
// owns the retry schedule; a channel makes one attempt per call.
//
// Implementations are safe for concurrent use and never log or return the e-mail address or
// the link, which may carry a session token (DESIGN.md decision 7).
type Channel interface {
	// Name is the channel's fixed name ("email", "webhook"), used as a metric label.
	Name() string
	// Send makes one attempt to deliver r. A nil error means the channel handed the reminder
	// over (the SMTP server accepted the message, the webhook answered 2xx); retry is then
	// false.
	Send(ctx context.Context, r *Reminder) (retry bool, err error)
}

// Reminder is one reminder for one inquiry at one stage, everything a channel needs to deliver
// it. The scheduler builds it after it has claimed the stage and minted the link.
//
// EmailAddress and Link are secrets in the sense of DESIGN.md decisions 7 and 8: channels put
// them in the message and nowhere else.
type Reminder struct {
	// InquiryID is Persona's inquiry id (inq_...). Required, as are Stage, ExpiresAt and Link.
	InquiryID string
	// ReferenceID is the customer's reference for the user, when the inquiry has one.
	ReferenceID string
	// TemplateID is the inquiry's Persona template (itmpl_...), when known; with ReferenceID
	// it picks the brand. The webhook channel passes it on as template_id.
	TemplateID string
	// Locale is the user's locale or country from the inquiry field RESUMER_LOCALE_FIELD
	// names ("es", "de-AT", "MX"), when known; see MatchLocale. Empty, or naming none of
	// Locales: the brand's default. It picks the e-mail's language and the webhook body's
	// locale.
	Locale string
	// Stage says which reminder this is (6h before expiry, 1h before ...).
	Stage Stage
	// ExpiresAt is when the inquiry expires.
	ExpiresAt time.Time
	// Now is the time the scheduler decided to send; the time left shown to the user is
	// ExpiresAt - Now. Zero means the channel's own clock.
	Now time.Time
	// EmailAddress is the user's e-mail address; empty when Persona did not collect one.
	EmailAddress string
	// NameFirst is the user's first name, when known.
	NameFirst string
	// Link is the URL that resumes the inquiry (see link.go). Required.
	Link string
}

// TimeLeft is the time from r.Now (or now, when r.Now is zero) to r.ExpiresAt.
func (r *Reminder) TimeLeft(now time.Time) time.Duration {
	if !r.Now.IsZero() {
		now = r.Now
	}
	return r.ExpiresAt.Sub(now)
}

// validate checks the fields every channel needs. Errors wrap ErrInvalidReminder and name the
// missing field only.
func (r *Reminder) validate() error {
	switch {
	case r == nil:
		return fmt.Errorf("%w: nil reminder", ErrInvalidReminder)
	case r.InquiryID == "":
		return fmt.Errorf("%w: no inquiry id", ErrInvalidReminder)
	case r.Stage.Name == "":
		return fmt.Errorf("%w: no stage", ErrInvalidReminder)
	case r.ExpiresAt.IsZero():
		return fmt.Errorf("%w: no expiry", ErrInvalidReminder)
	case r.Link == "":
		return fmt.Errorf("%w: no link", ErrInvalidReminder)
	}
	return nil
}

// Stage is a reminder stage: how long before an inquiry's expiry the reminder is due, with a
// stable name ("6h", "1h", "30m") for Redis keys, metric labels and template file names.
// Build one with NewStage or ParseStage so the name is canonical.
type Stage struct {
	// Name is the canonical name of Before, as StageName returns it.
	Name string
	// Before is how long before expiry the reminder is due.
	Before time.Duration
}

// NewStage returns the stage due d before expiry, named StageName(d).
func NewStage(d time.Duration) Stage { return Stage{Name: StageName(d), Before: d} }

// ParseStage parses a stage such as "6h", "90m" or "1h30m" (time.ParseDuration syntax) and
// returns it with its canonical name ("60m" becomes "1h"). It fails on a duration that is not
// positive or not a whole number of seconds.
func ParseStage(s string) (Stage, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return Stage{}, fmt.Errorf("parse stage %q: %w", s, err)
	}
	if d <= 0 || d%time.Second != 0 {
		return Stage{}, fmt.Errorf("parse stage %q: want a positive whole number of seconds", s)
	}
	return NewStage(d), nil
}

// String returns the stage's name.
func (s Stage) String() string { return s.Name }

// StageName returns the canonical name of a stage due d before expiry, the name the state
// store records it under and metric labels show: "6h", "90m", "23h59m58s" (state.StageName).
func StageName(d time.Duration) string { return state.StageName(d) }

// TimeLeftInWords says how long d is the way an English reminder tells the user; it is
// TimeLeftIn("en", d).
func TimeLeftInWords(d time.Duration) string { return TimeLeftIn("en", d) }

// timePhrases are one locale's words for a time left, each with the count as %d where it
// has one. German uses the dative, as its templates say "in {{.TimeLeft}}".
type timePhrases struct {
	lessThanMinute, minute, minutes, hour, hours, days string
}

var phrasesByLocale = map[string]timePhrases{
	"en": {"less than a minute", "1 minute", "%d minutes", "about 1 hour", "about %d hours", "about %d days"},
	"es": {"menos de un minuto", "1 minuto", "%d minutos", "aproximadamente 1 hora", "aproximadamente %d horas", "aproximadamente %d días"},
	"de": {"weniger als einer Minute", "1 Minute", "%d Minuten", "etwa 1 Stunde", "etwa %d Stunden", "etwa %d Tagen"},
}

// TimeLeftIn says how long d is in locale (one of Locales; English for any other), the way
// a reminder tells the user, with the plural each count needs: "45 minutes", "1 minute",
// "about 1 hour", "about 6 hours", "about 3 days", or "less than a minute" for anything under
// 30 seconds (including a negative d). Minutes are exact (rounded to the nearest minute)
// below one hour; hours (below 48) and days are rounded and said to be approximate. The
// German phrases are in the dative ("in etwa 6 Stunden").
func TimeLeftIn(locale string, d time.Duration) string {
	p, ok := phrasesByLocale[locale]
	if !ok {
		p = phrasesByLocale["en"]
	}
	m := d.Round(time.Minute) / time.Minute
	switch {
	case m < 1:
		return p.lessThanMinute
	case m == 1:
		return p.minute
	case m < 60:
		return fmt.Sprintf(p.minutes, m)
	}
	h := d.Round(time.Hour) / time.Hour
	switch {
	case h == 1:
		return p.hour
	case h < 48:
		return fmt.Sprintf(p.hours, h)
	}
	days := d.Round(24*time.Hour) / (24 * time.Hour)
	return fmt.Sprintf(p.days, days)
}
