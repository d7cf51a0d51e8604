package persona

import "strings"

// eventObjects are the kinds of object Persona's events are about (PERSONA.md §4), as the
// first part of an event's name; ObjectOther stands for every other.
var eventObjects = []string{
	"inquiry", "inquiry-session", "verification", "document", "account", "case", "report",
	"transaction",
}

// ObjectOther is what EventObject returns for an event name of no kind in EventObjects.
const ObjectOther = "other"

// EventObjects returns every value EventObject can return, ObjectOther last: a bounded set,
// for a metric label.
func EventObjects() []string { return append(append([]string(nil), eventObjects...), ObjectOther) }

// EventObject returns the kind of object an event is about, from the first part of its name
// (up to the first '.' or '/'): "inquiry" for "inquiry.started", "report" for
// "report/watchlist.ready", "inquiry-session" for "inquiry-session.started"; ObjectOther for
// a kind Persona does not document (the name itself may be anything, so it never becomes a
// label).
func EventObject(name string) string {
	kind := name
	if i := strings.IndexAny(name, "./"); i >= 0 {
		kind = name[:i]
	}
	for _, o := range eventObjects {
		if kind == o {
			return o
		}
	}
	return ObjectOther
}
