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
	var msg *nats.Msg
	if ev.AboutInquiry() {
		msg = nats.NewMsg(Subject(ev.Name))
		msg.Header.Set(HeaderInquiryID, ev.InquiryID)
	} else {
		msg = nats.NewMsg(OtherSubject(ev.Name))
		if len(ev.RelatedInquiryIDs) > 0 {
			msg.Header.Set(HeaderRelatedInquiryIDs, strings.Join(ev.RelatedInquiryIDs, ","))
		}
	}
	msg.Data = body
	msg.Header.Set(nats.MsgIdHdr, ev.ID)
	msg.Header.Set(HeaderEventName, ev.Name)
	at := ev.CreatedAt
	switch ev.TimeSource {
	case persona.TimeFromEvent:
	case persona.TimeFromUpdatedAt:
		msg.Header.Set(HeaderEventTimeSource, TimeSourceUpdatedAt)
	default:
		at = received
		msg.Header.Set(HeaderEventTimeSource, TimeSourceReceivedAt)
	}
	msg.Header.Set(HeaderEventCreatedAt, at.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(HeaderReceivedAt, received.UTC().Format(time.RFC3339Nano))
	return msg
}

// The values of HeaderEventTimeSource.
const (
	// TimeSourceUpdatedAt: the event had no created-at; the payload's updated-at stands in.
	TimeSourceUpdatedAt = "updated_at"
	// TimeSourceReceivedAt: the event had neither; the receive time stands in.
	TimeSourceReceivedAt = "received_at"
)
