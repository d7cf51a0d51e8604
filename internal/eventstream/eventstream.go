// Package eventstream is the contract between the webhook receiver, which publishes Persona
// events to JetStream, and the worker, which consumes them: the stream's configuration, the
// subject scheme and the message headers. Both roles call Ensure at start-up, so either may
// start first.
package eventstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultSubjectPrefix is the subject prefix of a Subjects zero value, and so of a deployment
// that does not choose one (RESUMER_SUBJECT_PREFIX): an event named "inquiry.started" is
// published to "persona.events.inquiry.started".
const DefaultSubjectPrefix = "persona.events"

// SubjectPrefix starts every event subject of the default scheme, dot included.
const SubjectPrefix = DefaultSubjectPrefix + "."

// Subjects is one deployment's subject scheme: each event is published to
// "<prefix>.<event name>" and its stream claims "<prefix>.>". Two deployments sharing one
// NATS account (staging and production, two Persona environments) need two prefixes, since
// JetStream lets only one stream claim a subject. The zero value is the default prefix.
type Subjects struct {
	prefix string // with its trailing '.'; "" for the default
}

// NewSubjects returns the scheme of prefix: one or more dot-separated tokens, none empty, of
// printable characters other than the wildcards '*' and '>' and spaces, not starting with
// '$' (NATS's own subjects) and not ending with a dot. An empty prefix is the default. It
// fails naming what is wrong.
func NewSubjects(prefix string) (Subjects, error) {
	if prefix == "" {
		return Subjects{}, nil
	}
	if strings.HasPrefix(prefix, "$") {
		return Subjects{}, fmt.Errorf("subject prefix %q: starts with '$', which NATS keeps for its own subjects", prefix)
	}
	for _, tok := range strings.Split(prefix, ".") {
		if tok == "" {
			return Subjects{}, fmt.Errorf("subject prefix %q: empty token (a leading, trailing or double dot)", prefix)
		}
		if i := strings.IndexFunc(tok, func(r rune) bool {
			return r <= ' ' || r == '*' || r == '>' || r == 0x7f
		}); i >= 0 {
			return Subjects{}, fmt.Errorf("subject prefix %q: %q is not allowed in a subject token", prefix, tok[i:i+1])
		}
	}
	return Subjects{prefix: prefix + "."}, nil
}

func (s Subjects) dotted() string {
	if s.prefix == "" {
		return SubjectPrefix
	}
	return s.prefix
}

// Prefix returns the prefix, without its trailing dot: "persona.events" by default.
func (s Subjects) Prefix() string { return strings.TrimSuffix(s.dotted(), ".") }

// Filter returns the subjects the events stream claims: "<prefix>.>".
func (s Subjects) Filter() string { return s.dotted() + ">" }

// Contains reports whether subject is one of the scheme's event subjects.
func (s Subjects) Contains(subject string) bool {
	return len(subject) > len(s.dotted()) && strings.HasPrefix(subject, s.dotted())
}

// otherToken is the subject token under SubjectPrefix of events about objects other than
// inquiries (see OtherSubject).
const otherToken = "other"

// Header names set on every published event, besides nats.MsgIdHdr (the event id).
const (
	HeaderEventName = "Persona-Event-Name"
	// HeaderInquiryID is the inquiry whose record the event may change; absent on events
	// about other objects.
	HeaderInquiryID = "Persona-Inquiry-Id"
	// HeaderRelatedInquiryIDs lists, comma separated, the inquiries an event about another
	// object names (a case's, a report's); for an operator's eyes only.
	HeaderRelatedInquiryIDs = "Persona-Related-Inquiry-Ids"
	// HeaderEventCreatedAt is the event's time: its created-at, else the payload's
	// updated-at, else the receive time (HeaderEventTimeSource says which).
	HeaderEventCreatedAt = "Persona-Event-Created-At" // RFC 3339, nanoseconds
	// HeaderEventTimeSource is set when the event had no created-at of its own:
	// "updated_at" or "received_at".
	HeaderEventTimeSource = "Resumer-Event-Time-Source"
	HeaderReceivedAt      = "Resumer-Received-At" // RFC 3339, nanoseconds
	// HeaderSource says where an event came from: SourceReplay or SourceSynthetic; absent
	// (SourceWebhook) for events Persona delivered to the receiver.
	HeaderSource = "Resumer-Event-Source"
	// HeaderDeadReason is set on a dead letter: why the event could not be applied.
	HeaderDeadReason = "Resumer-Dead-Reason"
	// HeaderDeadSubject is set on a dead letter: the subject it was first published to.
	HeaderDeadSubject = "Resumer-Dead-Subject"
	// HeaderDeadSequence is set on a dead letter: its sequence in the events stream.
	HeaderDeadSequence = "Resumer-Dead-Sequence"
)

// The values of HeaderSource.
const (
	// SourceWebhook: delivered by Persona to the webhook receiver (the header is absent).
	SourceWebhook = "webhook"
	// SourceReplay: a past event read from Persona's Events API by reconciliation and
	// published unchanged, under its own event id.
	SourceReplay = "replay"
	// SourceSynthetic: an event reconciliation made up from a difference between the tracked
	// inquiry and Persona's current view of it; its id starts with SyntheticIDPrefix.
	SourceSynthetic = "synthetic"
)

// SyntheticIDPrefix starts the event id of every synthetic event, so that it can never be
// taken for one of Persona's.
const SyntheticIDPrefix = "evt_resumer_"

// Defaults for Config.
const (
	DefaultStream      = "PERSONA_EVENTS"
	DefaultDLQStream   = "PERSONA_DLQ"
	DefaultDedupWindow = time.Hour
	DefaultMaxAge      = 7 * 24 * time.Hour
)

// Config describes the events stream.
type Config struct {
	Name        string        // stream name, e.g. PERSONA_EVENTS
	DedupWindow time.Duration // JetStream duplicate window for Nats-Msg-Id
	MaxAge      time.Duration // how long events are kept for replay
	Replicas    int           // 1, or 3 on a cluster
	Subjects    Subjects      // the subjects the stream claims; the zero value is the default
}

// ErrSubjectsOverlap is wrapped by Ensure's error when another stream of the NATS account
// already claims some of the events subjects: a second deployment in the same account needs
// its own subject prefix (and stream name).
var ErrSubjectsOverlap = errors.New("the events subjects overlap another stream's")

// jsErrSubjectOverlap is JetStream's error code for "subjects overlap with an existing
// stream".
const jsErrSubjectOverlap = 10065

// Subject returns the subject an event of this name about an inquiry (or a part of one) is
// published to under the default prefix; Subjects.Event does it under any. Characters that
// are not safe in a subject token (wildcards, spaces, control characters) become '_', and
// empty tokens become "_", so any event name Persona invents maps to a valid subject; a name
// whose first token is "other" gets "_other", so that it never lands among OtherSubject's.
func Subject(eventName string) string { return Subjects{}.Event(eventName) }

// OtherSubject returns the subject an event of this name about another object (an account,
// a case, a report, a transaction, a verification of no inquiry; PERSONA.md §4) is published
// to under the default prefix: "account.created" goes to
// "persona.events.other.account.created"; Subjects.Other does it under any. The stream keeps
// them like any event, for an operator to inspect or replay; the worker acknowledges them
// without applying.
func OtherSubject(eventName string) string { return Subjects{}.Other(eventName) }

// IsOtherSubject reports whether subject is one of OtherSubject's (default prefix).
func IsOtherSubject(subject string) bool { return Subjects{}.IsOther(subject) }

// Event returns the subject an event of this name about an inquiry is published to under
// the prefix (see Subject).
func (s Subjects) Event(eventName string) string {
	tokens := subjectTokens(eventName)
	if strings.HasPrefix(tokens, otherToken+".") || tokens == otherToken {
		tokens = "_" + tokens
	}
	return s.dotted() + tokens
}

// Other returns the subject an event of this name about another object than an inquiry is
// published to under the prefix (see OtherSubject).
func (s Subjects) Other(eventName string) string {
	return s.dotted() + otherToken + "." + subjectTokens(eventName)
}

// IsOther reports whether subject is one of Other's.
func (s Subjects) IsOther(subject string) bool {
	return strings.HasPrefix(subject, s.dotted()+otherToken+".")
}

// subjectTokens turns an event name into subject tokens (see Subject).
func subjectTokens(eventName string) string {
	if eventName == "" {
		return "_"
	}
	tokens := strings.Split(eventName, ".")
	for i, tok := range tokens {
		if tok == "" {
			tokens[i] = "_"
			continue
		}
		tokens[i] = strings.Map(func(r rune) rune {
			if r <= ' ' || r == '*' || r == '>' || r == 0x7f {
				return '_'
			}
			return r
		}, tok)
	}
	return strings.Join(tokens, ".")
}

// Ensure creates the events stream or updates it to cfg (file storage, subjects
// cfg.Subjects.Filter(), persona.events.> by default). It fails when JetStream is unavailable
// or refuses the configuration; when another stream claims some of the subjects, the error
// wraps ErrSubjectsOverlap and names that stream. An overlap is permanent: retrying does not
// help.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultStream
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Name,
		Description: "Persona webhook events received by resumer",
		Subjects:    []string{cfg.Subjects.Filter()},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  cfg.DedupWindow,
		MaxAge:      cfg.MaxAge,
		Replicas:    cfg.Replicas,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		if apiErr := (*jetstream.APIError)(nil); errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrSubjectOverlap {
			return nil, fmt.Errorf("ensure stream %s: %w: %s is claimed by %s (%v)",
				cfg.Name, ErrSubjectsOverlap, cfg.Subjects.Filter(), claimants(ctx, js, cfg), err)
		}
		return nil, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// claimants names the streams other than cfg.Name whose subjects collide with cfg's, for an
// error message: "stream PERSONA_EVENTS", "streams A, B", or "another stream" when they cannot
// be listed.
func claimants(ctx context.Context, js jetstream.JetStream, cfg Config) string {
	var names []string
	list := js.StreamNames(ctx, jetstream.WithStreamListSubject(cfg.Subjects.Filter()))
	for name := range list.Name() {
		if name != cfg.Name {
			names = append(names, name)
		}
	}
	switch {
	case list.Err() != nil || len(names) == 0:
		return "another stream"
	case len(names) == 1:
		return "stream " + names[0]
	default:
		return "streams " + strings.Join(names, ", ")
	}
}

// EnsureDLQ creates or updates the dead-letter stream name, which holds events the worker
// could never apply. Its subjects are "<name>.>" so it never overlaps the events stream.
func EnsureDLQ(ctx context.Context, js jetstream.JetStream, name string, replicas int) (jetstream.Stream, error) {
	if name == "" {
		return nil, errors.New("ensure dead-letter stream: empty name")
	}
	if replicas <= 0 {
		replicas = 1
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "Persona events resumer could not apply",
		Subjects:    []string{DLQSubject(name, ">")},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure dead-letter stream %s: %w", name, err)
	}
	return s, nil
}

// DLQSubject returns the subject a dead letter of the given event subject suffix is
// published to in the dead-letter stream named dlq.
func DLQSubject(dlq, suffix string) string {
	return dlqSubjectPrefix + strings.ToLower(dlq) + "." + suffix
}

// dlqSubjectPrefix starts every dead-letter subject.
const dlqSubjectPrefix = "resumer.dlq."

// IsDLQSubject reports whether subject is a dead-letter subject (of any dead-letter stream).
func IsDLQSubject(subject string) bool { return strings.HasPrefix(subject, dlqSubjectPrefix) }
