package eventstream

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/resumer/resumer/persona"
)

// Message returns the message that stores event ev (its raw body) in the events stream, as
// every publisher builds it (the webhook receiver, reconciliation): an event about an inquiry
// or a part of one on Subject with HeaderInquiryID, any other on OtherSubject with
// HeaderRelatedInquiryIDs; Nats-Msg-Id is the event id (the stream's duplicate window); the
// event time in HeaderEventCreatedAt is the event's own, else the payload's updated-at, else
// received (HeaderEventTimeSource says which of the last two). msg.Data is body itself, not
// a copy.
func Message(ev *persona.Event, body []byte, received time.Time) *nats.Msg {
	return Subjects{}.Message(ev, body, received)
}

// Message is the package's Message under the scheme's prefix. The headers are built in their
// canonical form directly (a webhook's hot path).
func (s Subjects) Message(ev *persona.Event, body []byte, received time.Time) *nats.Msg {
	h := make(nats.Header, 7)
	msg := &nats.Msg{Data: body, Header: h}
	if ev.AboutInquiry() {
		msg.Subject = s.Event(ev.Name)
		h[HeaderInquiryID] = []string{ev.InquiryID}
	} else {
		msg.Subject = s.Other(ev.Name)
		if len(ev.RelatedInquiryIDs) > 0 {
			h[HeaderRelatedInquiryIDs] = []string{strings.Join(ev.RelatedInquiryIDs, ",")}
		}
	}
	h[nats.MsgIdHdr] = []string{ev.ID}
	h[HeaderEventName] = []string{ev.Name}
	at := ev.CreatedAt
	switch ev.TimeSource {
	case persona.TimeFromEvent:
	case persona.TimeFromUpdatedAt:
		h[HeaderEventTimeSource] = []string{TimeSourceUpdatedAt}
	default:
		at = received
		h[HeaderEventTimeSource] = []string{TimeSourceReceivedAt}
	}
	h[HeaderEventCreatedAt] = []string{at.UTC().Format(time.RFC3339Nano)}
	h[HeaderReceivedAt] = []string{received.UTC().Format(time.RFC3339Nano)}
	return msg
}

// The values of HeaderEventTimeSource.
const (
	// TimeSourceUpdatedAt: the event had no created-at; the payload's updated-at stands in.
	TimeSourceUpdatedAt = "updated_at"
	// TimeSourceReceivedAt: the event had neither; the receive time stands in.
	TimeSourceReceivedAt = "received_at"
)
