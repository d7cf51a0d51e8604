package persona

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// ResumedEventIDPrefix starts the id of every event ResumedEvent makes, so that it is never
// taken for one of Persona's.
const ResumedEventIDPrefix = "evt_resumer_resumed_"

// ResumedEvent is the event resumer records itself when it resumed an expired inquiry
// through Persona's API: Persona makes the inquiry pending again with a new expires-at
// (PERSONA.md §6) but documents no webhook for it, so without this event the state would say
// expired and no reminder would be armed for the new expiry. inq is the inquiry as Persona's
// resume answer returned it; at is when the resume happened. It returns nil when inq is not
// resumable (created/pending) or has no id. The id is derived from the inquiry and its new
// expires-at, so recording the same resume twice is a duplicate.
func ResumedEvent(inq *Inquiry, at time.Time) *Event {
	if inq == nil || inq.ID == "" || !inq.Status.Resumable() {
		return nil
	}
	snap := &Inquiry{ID: inq.ID, Status: inq.Status, ExpiresAt: inq.ExpiresAt, TemplateID: inq.TemplateID}
	h := sha256.Sum256([]byte(inq.ID + "|" + strconv.FormatInt(inq.ExpiresAt.UnixMilli(), 10)))
	return &Event{
		ID:          ResumedEventIDPrefix + hex.EncodeToString(h[:10]),
		Name:        "inquiry.transitioned",
		CreatedAt:   at.UTC().Truncate(time.Millisecond),
		InquiryID:   inq.ID,
		PayloadType: "inquiry",
		Inquiry:     snap,
	}
}
