package personatest

import (
	"encoding/json"
	"strings"
	"time"
)

// Intervals are one inquiry template's expiry intervals (PERSONA.md §5); a zero field takes
// the Options' interval of the same name.
type Intervals struct {
	AfterCreate, AfterStart, AfterResume time.Duration
}

// intervals returns the expiry intervals of template id: Options.TemplateIntervals' entry
// over the Options' own.
func (s *Server) intervals(templateID string) Intervals {
	iv := Intervals{AfterCreate: s.opts.AfterCreate, AfterStart: s.opts.AfterStart, AfterResume: s.opts.AfterResume}
	t, ok := s.opts.TemplateIntervals[templateID]
	if !ok {
		return iv
	}
	if t.AfterCreate > 0 {
		iv.AfterCreate = t.AfterCreate
		if t.AfterStart <= 0 {
			iv.AfterStart = t.AfterCreate // after-start defaults to the create value (§5)
		}
	}
	if t.AfterStart > 0 {
		iv.AfterStart = t.AfterStart
	}
	if t.AfterResume > 0 {
		iv.AfterResume = t.AfterResume
	}
	return iv
}

// ObjectEvent describes an event about another object than an inquiry, or about a part of
// one, for EmitObjectEvent (PERSONA.md §4: a webhook subscribed to more than inquiries gets
// them, in the same envelope, signed and retried like any other).
type ObjectEvent struct {
	// Name is the event name: "account.created", "case.created", "report/watchlist.ready",
	// "verification.passed", "document.submitted", "transaction.created", ...
	Name string
	// Type is the payload's data.type; by default the name up to its last '.'
	// ("report/watchlist" for "report/watchlist.ready").
	Type string
	// ID is the payload object's id; generated when empty.
	ID string
	// InquiryID fills relationships.inquiry (a verification's, a document's, a report's);
	// empty sends {"data": null}, as Persona's report samples do.
	InquiryID string
	// InquiryIDs fills relationships.inquiries, the list a case names its inquiries in.
	InquiryIDs []string
	// OmitCreatedAt leaves data.attributes.created-at out of the event, as some of Persona's
	// published samples do (PERSONA.md §3); the payload's updated-at is the event time.
	OmitCreatedAt bool
	// OmitUpdatedAt also leaves the payload's updated-at out: the event carries no time.
	OmitUpdatedAt bool
}

// EmitObjectEvent emits an event about another object (see ObjectEvent) at the simulator's
// current time and delivers it like every event. The returned Event's InquiryID is
// e.InquiryID.
func (s *Server) EmitObjectEvent(e ObjectEvent) Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.nowLocked()
	typ := e.Type
	if typ == "" {
		typ = e.Name
		if i := strings.LastIndexByte(typ, '.'); i > 0 {
			typ = typ[:i]
		}
	}
	objectID := e.ID
	if objectID == "" {
		objectID = newID(objectPrefix(typ))
	}
	attrs := map[string]any{"status": "created", "created-at": timeValue(at)}
	if !e.OmitUpdatedAt {
		attrs["updated-at"] = timeValue(at)
	}
	rels := map[string]any{}
	if e.InquiryID != "" {
		rels["inquiry"] = map[string]any{"data": map[string]any{"type": "inquiry", "id": e.InquiryID}}
	} else if e.InquiryIDs == nil {
		rels["inquiry"] = map[string]any{"data": nil}
	}
	if e.InquiryIDs != nil {
		list := make([]any, 0, len(e.InquiryIDs))
		for _, id := range e.InquiryIDs {
			list = append(list, map[string]any{"type": "inquiry", "id": id})
		}
		rels["inquiries"] = map[string]any{"data": list}
	}
	payload := map[string]any{"type": typ, "id": objectID, "attributes": attrs, "relationships": rels}
	return s.emitDocLocked(e.Name, e.InquiryID, payload, at, e.OmitCreatedAt)
}

// objectPrefix is the id prefix of an object of JSON:API type typ, as Persona's ids read.
func objectPrefix(typ string) string {
	kind, _, _ := strings.Cut(typ, "/")
	switch kind {
	case "account":
		return "act_"
	case "case":
		return "case_"
	case "report":
		return "rep_"
	case "verification":
		return "ver_"
	case "document":
		return "doc_"
	case "transaction":
		return "txn_"
	case "inquiry-session":
		return "iqse_"
	}
	return "obj_"
}

// emitDocLocked builds an event with payload data payload at time at (without
// data.attributes.created-at when omitCreatedAt), records it and queues it for every
// webhook URL unless webhooks are off.
func (s *Server) emitDocLocked(name, inquiryID string, payload map[string]any, at time.Time, omitCreatedAt bool) Event {
	id := newID("evt_")
	attrs := map[string]any{
		"name":        name,
		"created-at":  timeValue(at),
		"redacted-at": nil,
		"payload": map[string]any{
			"data":     payload,
			"included": []any{},
		},
	}
	if omitCreatedAt {
		delete(attrs, "created-at")
	}
	doc := map[string]any{"data": map[string]any{"type": "event", "id": id, "attributes": attrs}}
	body, _ := json.Marshal(inflect(doc, s.opts.WebhookKeyInflection)) // maps of JSON values always encode
	ev := Event{ID: id, Name: name, InquiryID: inquiryID, CreatedAt: at, Body: body, Delivered: !s.webhooksOff,
		doc: doc["data"].(map[string]any)}
	s.events = append(s.events, ev)
	if !s.webhooksOff {
		s.hooks.enqueue(ev)
	}
	return ev
}
