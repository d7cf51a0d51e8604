package persona

// Status is an inquiry's status as Persona reports it (PERSONA.md §4). The list grows over
// time: an unknown value is carried as it is, never rejected.
type Status string

// The inquiry statuses Persona documents.
const (
	StatusCreated     Status = "created"
	StatusPending     Status = "pending"
	StatusCompleted   Status = "completed"
	StatusFailed      Status = "failed"
	StatusExpired     Status = "expired"
	StatusNeedsReview Status = "needs_review"
	StatusApproved    Status = "approved"
	StatusDeclined    Status = "declined"
	StatusRedacted    Status = "redacted"
)

// Resumable reports whether an inquiry in this status can be resumed with a fresh session
// token before it expires: only created and pending inquiries can (PERSONA.md §6, §8).
func (s Status) Resumable() bool { return s == StatusCreated || s == StatusPending }

// Known reports whether s is one of the statuses Persona documents.
func (s Status) Known() bool {
	switch s {
	case StatusCreated, StatusPending, StatusCompleted, StatusFailed, StatusExpired,
		StatusNeedsReview, StatusApproved, StatusDeclined, StatusRedacted:
		return true
	}
	return false
}

// StatusForEvent returns the status an inquiry event implies (PERSONA.md §4), and false for
// events that carry no status of their own (inquiry.transitioned, inquiry-session.*, and
// any event this code does not know).
func StatusForEvent(name string) (Status, bool) {
	switch name {
	case "inquiry.created":
		return StatusCreated, true
	case "inquiry.started":
		return StatusPending, true
	case "inquiry.completed":
		return StatusCompleted, true
	case "inquiry.failed":
		return StatusFailed, true
	case "inquiry.expired":
		return StatusExpired, true
	case "inquiry.marked-for-review":
		return StatusNeedsReview, true
	case "inquiry.approved":
		return StatusApproved, true
	case "inquiry.declined":
		return StatusDeclined, true
	case "inquiry.redacted":
		return StatusRedacted, true
	}
	return "", false
}
