package personatest

import (
	"errors"
	"fmt"
	"time"

	"github.com/resumer/resumer/persona"
)

// Errors of the Go control methods (Start, Complete, ...).
var (
	// ErrUnknownInquiry: no inquiry has that id.
	ErrUnknownInquiry = errors.New("personatest: unknown inquiry")
	// ErrInvalidTransition: the inquiry's status does not allow the change.
	ErrInvalidTransition = errors.New("personatest: invalid status transition")
)

// InquiryParams describe an inquiry for CreateInquiry. Empty ids are generated.
type InquiryParams struct {
	ID           string
	ReferenceID  string
	TemplateID   string
	AccountID    string
	EmailAddress string
	NameFirst    string
	// Locale, when set, is sent as the inquiry field "locale" (a language tag or country
	// code, as a template may collect it; RESUMER_LOCALE_FIELD=locale reads it).
	Locale string
}

// inquiry is the simulator's record of one inquiry.
type inquiry struct {
	seq          int
	id           string
	status       persona.Status
	referenceID  string
	templateID   string
	accountID    string
	emailAddress string
	nameFirst    string
	locale       string
	createdAt    time.Time
	startedAt    time.Time
	completedAt  time.Time
	failedAt     time.Time
	expiredAt    time.Time
	redactedAt   time.Time
	decidedAt    time.Time
	markedAt     time.Time
	expiresAt    time.Time
	updatedAt    time.Time
	// templateVersion is the inquiry template version the inquiry was created from.
	templateVersion string
	sessions        []*session
}

// session is one inquiry session; its token's exp is fixed at creation (PERSONA.md §6).
type session struct {
	id        string
	token     string
	createdAt time.Time
	expiresAt time.Time
	// used: the hosted flow was opened with it, so resume mints a new one.
	used bool
	// revoked: the inquiry expired after the session was created (PERSONA.md §5).
	revoked bool
}

// oneTimeLink is a single-use link (PERSONA.md §6).
type oneTimeLink struct {
	code      string
	inquiryID string
	expiresAt time.Time
	used      bool
}

// snapshot converts the record to the domain type the client returns.
func (q *inquiry) snapshot() *persona.Inquiry {
	return &persona.Inquiry{
		ID: q.id, Status: q.status, ReferenceID: q.referenceID, TemplateID: q.templateID, TemplateVersionID: q.templateVersion,
		AccountID: q.accountID, CreatedAt: q.createdAt, StartedAt: q.startedAt,
		CompletedAt: q.completedAt, FailedAt: q.failedAt, ExpiredAt: q.expiredAt,
		RedactedAt: q.redactedAt, ExpiresAt: q.expiresAt, UpdatedAt: q.updatedAt,
		EmailAddress: q.emailAddress, NameFirst: q.nameFirst,
	}
}

// CreateInquiry creates a created inquiry that expires AfterCreate from now, and sends
// inquiry.created. A params.ID already in use is replaced by a fresh one.
func (s *Server) CreateInquiry(p InquiryParams) *persona.Inquiry {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	s.expireDueLocked(now)
	if p.ID == "" || s.inquiries[p.ID] != nil {
		p.ID = newID("inq_")
	}
	if p.TemplateID == "" {
		p.TemplateID = "itmpl_simulator"
	}
	if p.AccountID == "" {
		p.AccountID = newID("act_")
	}
	s.seq++
	q := &inquiry{
		seq: s.seq, id: p.ID, status: persona.StatusCreated, referenceID: p.ReferenceID,
		templateID: p.TemplateID, accountID: p.AccountID, emailAddress: p.EmailAddress,
		nameFirst: p.NameFirst, locale: p.Locale, createdAt: now, expiresAt: now.Add(s.intervals(p.TemplateID).AfterCreate),
		templateVersion: s.templateLocked(p.TemplateID).current,
	}
	s.inquiries[q.id] = q
	s.ordered = append(s.ordered, q)
	s.emitLocked("inquiry.created", q, now)
	return q.snapshot()
}

// Inquiry returns the inquiry's current state, or false when the id is unknown.
func (s *Server) Inquiry(id string) (*persona.Inquiry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDueLocked(s.nowLocked())
	q := s.inquiries[id]
	if q == nil {
		return nil, false
	}
	return q.snapshot(), true
}

// Sessions is the number of sessions the inquiry has had (0 for an unknown id).
func (s *Server) Sessions(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.inquiries[id]; q != nil {
		return len(q.sessions)
	}
	return 0
}

// SetExpiresAt overrides the inquiry's expires-at, as a template with another interval
// would have set it; a time already past expires it at once.
func (s *Server) SetExpiresAt(id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.inquiries[id]
	if q == nil {
		return fmt.Errorf("set expires-at of %s: %w", id, ErrUnknownInquiry)
	}
	q.expiresAt = at.UTC().Truncate(time.Millisecond)
	q.updatedAt = s.nowLocked()
	s.expireDueLocked(s.nowLocked())
	return nil
}

// transition describes one Go/control-API status change.
type transition struct {
	event string
	to    persona.Status
	from  []persona.Status
	apply func(q *inquiry, now time.Time, s *Server)
}

var transitions = map[string]transition{
	"start": {event: "inquiry.started", to: persona.StatusPending, from: []persona.Status{persona.StatusCreated},
		apply: func(q *inquiry, now time.Time, s *Server) {
			q.startedAt = now
			q.expiresAt = now.Add(s.intervals(q.templateID).AfterStart) // PERSONA.md §5: interval after start
		}},
	"complete": {event: "inquiry.completed", to: persona.StatusCompleted,
		from:  []persona.Status{persona.StatusCreated, persona.StatusPending},
		apply: func(q *inquiry, now time.Time, _ *Server) { q.completedAt = now }},
	"fail": {event: "inquiry.failed", to: persona.StatusFailed,
		from:  []persona.Status{persona.StatusCreated, persona.StatusPending},
		apply: func(q *inquiry, now time.Time, _ *Server) { q.failedAt = now }},
	"mark-for-review": {event: "inquiry.marked-for-review", to: persona.StatusNeedsReview,
		from:  []persona.Status{persona.StatusPending, persona.StatusCompleted, persona.StatusFailed},
		apply: func(q *inquiry, now time.Time, _ *Server) { q.markedAt = now }},
	"approve": {event: "inquiry.approved", to: persona.StatusApproved,
		from:  []persona.Status{persona.StatusCompleted, persona.StatusNeedsReview, persona.StatusFailed, persona.StatusDeclined},
		apply: func(q *inquiry, now time.Time, _ *Server) { q.decidedAt = now }},
	"decline": {event: "inquiry.declined", to: persona.StatusDeclined,
		from:  []persona.Status{persona.StatusCompleted, persona.StatusNeedsReview, persona.StatusFailed, persona.StatusApproved},
		apply: func(q *inquiry, now time.Time, _ *Server) { q.decidedAt = now }},
	"expire": {event: "inquiry.expired", to: persona.StatusExpired,
		from: []persona.Status{persona.StatusCreated, persona.StatusPending},
		apply: func(q *inquiry, now time.Time, s *Server) {
			q.expiredAt = now
			s.revokeLocked(q)
		}},
	"redact": {event: "inquiry.redacted", to: persona.StatusRedacted,
		from: []persona.Status{persona.StatusCreated, persona.StatusPending, persona.StatusCompleted, persona.StatusFailed,
			persona.StatusExpired, persona.StatusNeedsReview, persona.StatusApproved, persona.StatusDeclined},
		apply: func(q *inquiry, now time.Time, s *Server) {
			q.redactedAt = now
			q.referenceID, q.emailAddress, q.nameFirst, q.locale = "", "", "", ""
			s.revokeLocked(q)
		}},
}

// Start moves a created inquiry to pending (the user began), with a new expiry AfterStart
// from now, and sends inquiry.started.
func (s *Server) Start(id string) error { return s.apply(id, "start") }

// Complete moves a created or pending inquiry to completed and sends inquiry.completed.
func (s *Server) Complete(id string) error { return s.apply(id, "complete") }

// Fail moves a created or pending inquiry to failed and sends inquiry.failed.
func (s *Server) Fail(id string) error { return s.apply(id, "fail") }

// MarkForReview moves a pending, completed or failed inquiry to needs_review and sends
// inquiry.marked-for-review.
func (s *Server) MarkForReview(id string) error { return s.apply(id, "mark-for-review") }

// Approve moves a completed, needs_review, failed or declined inquiry to approved and sends
// inquiry.approved.
func (s *Server) Approve(id string) error { return s.apply(id, "approve") }

// Decline moves a completed, needs_review, failed or approved inquiry to declined and sends
// inquiry.declined.
func (s *Server) Decline(id string) error { return s.apply(id, "decline") }

// Expire expires a created or pending inquiry now, whatever its expires-at, and sends
// inquiry.expired.
func (s *Server) Expire(id string) error { return s.apply(id, "expire") }

// Redact redacts an inquiry in any status but redacted: its personal fields and reference
// id are cleared, its sessions die, and inquiry.redacted is sent.
func (s *Server) Redact(id string) error { return s.apply(id, "redact") }

// apply performs a named transition. Errors wrap ErrUnknownInquiry or ErrInvalidTransition.
func (s *Server) apply(id, name string) error {
	tr, ok := transitions[name]
	if !ok {
		return fmt.Errorf("%s inquiry %s: unknown action: %w", name, id, ErrInvalidTransition)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	s.expireDueLocked(now)
	q := s.inquiries[id]
	if q == nil {
		return fmt.Errorf("%s inquiry %s: %w", name, id, ErrUnknownInquiry)
	}
	allowed := false
	for _, from := range tr.from {
		allowed = allowed || q.status == from
	}
	if !allowed {
		return fmt.Errorf("%s inquiry %s: status is %s: %w", name, id, q.status, ErrInvalidTransition)
	}
	q.status = tr.to
	tr.apply(q, now, s)
	s.emitLocked(tr.event, q, now)
	s.logger.Debug("inquiry changed", "inquiry_id", id, "status", string(q.status))
	return nil
}

// expireDueLocked expires every created or pending inquiry whose expires-at is not after
// now. The event's time is the expiry time itself, so events stay ordered by created-at even
// when Advance jumps past several expiries.
func (s *Server) expireDueLocked(now time.Time) {
	for _, q := range s.ordered {
		if !q.status.Resumable() || q.expiresAt.IsZero() || now.Before(q.expiresAt) {
			continue
		}
		q.status = persona.StatusExpired
		q.expiredAt = q.expiresAt
		s.revokeLocked(q)
		s.emitLocked("inquiry.expired", q, q.expiresAt)
	}
}

// revokeLocked ends the inquiry's sessions and one-time links (PERSONA.md §5).
func (s *Server) revokeLocked(q *inquiry) {
	for _, se := range q.sessions {
		se.revoked = true
	}
	for code, l := range s.links {
		if l.inquiryID == q.id {
			delete(s.links, code)
		}
	}
}
