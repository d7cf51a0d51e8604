package state

import (
	"fmt"
	"strings"
	"time"

	"github.com/resumer/resumer/persona"
)

// fieldIDRest is the name of what a record starts with, before its fields: the rest of the
// inquiry id beside its handle (see splitID).
const fieldIDRest = "id"

// Positions of the fields in stored order.
const (
	idxLastAt = iota
	idxStatus
	idxStatusAt
	idxReference
	idxTemplate
	idxAccount
	idxCreatedAt
	idxStartedAt
	idxExpiresAt
	idxLastEventID
	idxLastName
	idxEmail
	idxNameFirst
	idxUpdatedAt
	idxEvents
	idxCompletedAt
	idxExpiredAt
	idxExpirySource
	idxReminders
	idxAttempts
	idxDropped
	idxFunnel
	idxTemplateVersion
	idxLocale
	numFields
)

// Encodings of record fields; see lib.lua.
const (
	encBase   = iota // lt: 6 bytes big endian, the base of the times
	encStr           // a string
	encStatus        // a code of recordStatuses, or a string
	encTime          // the difference to the base
	encSource        // true (derived), or a time as its difference to the base
	encInt           // an integer
	encEvents        // an array, skipped
	encFunnel        // the funnel attribution: an integer or an array (skipped)
)

// recordFields are the record's fields in stored order.
var recordFields = [numFields]struct {
	name string
	enc  int
}{
	{fieldLastAt, encBase}, {fieldStatus, encStatus}, {fieldStatusAt, encTime},
	{fieldReference, encStr}, {fieldTemplate, encInt}, {fieldAccount, encStr},
	{fieldCreatedAt, encTime}, {fieldStartedAt, encTime}, {fieldExpiresAt, encTime},
	{fieldLastEventID, encStr}, {fieldLastName, encStr}, {fieldEmail, encStr},
	{fieldNameFirst, encStr}, {fieldUpdatedAt, encTime}, {fieldEvents, encEvents},
	{fieldCompletedAt, encTime}, {fieldExpiredAt, encTime}, {fieldExpirySource, encSource},
	{fieldReminders, encStr}, {fieldAttempts, encInt}, {fieldDropped, encStr},
	{fieldFunnel, encFunnel}, {fieldTemplateVersion, encInt}, {fieldLocale, encStr},
}

// recordStatuses are the status codes 1..9 of lib.lua's STATUSES.
var recordStatuses = []persona.Status{
	persona.StatusCreated, persona.StatusPending, persona.StatusExpired, persona.StatusCompleted,
	persona.StatusFailed, persona.StatusNeedsReview, persona.StatusDeclined, persona.StatusApproved,
	persona.StatusRedacted,
}

// record is a decoded stored record: the rest of the inquiry's id (see splitID), which fields
// are present (bit i for field i), and their values: strings (and the status) in str, times
// (unix ms), counts and the template's code in num. Packed values are as stored. The
// expiry's source (field xd) is derived, or a time in num (absent: the status's time).
type record struct {
	rest    string
	present uint32
	derived bool
	str     [numFields]string
	num     [numFields]int64
}

// has reports whether field i is present.
func (r *record) has(i int) bool { return r.present&(1<<i) != 0 }

// time returns time field i, the zero time when absent.
func (r *record) time(i int) time.Time {
	if !r.has(i) {
		return time.Time{}
	}
	return time.UnixMilli(r.num[i]).UTC()
}

// reminders returns the reminder list (field rm).
func (r *record) reminders() []string {
	if r.str[idxReminders] == "" {
		return nil
	}
	return strings.Split(r.str[idxReminders], ",")
}

// decodeRecord decodes a stored record (the format of lib.lua) into r. The remembered event
// ids are skipped.
func decodeRecord(b string, r *record) error {
	d := msgpackReader{b: b}
	v, err := d.next()
	if err != nil {
		return err
	}
	if v.kind != mpString {
		return fmt.Errorf("record starts with %s, not the rest of its id", v.kind)
	}
	r.rest = v.str
	if v, err = d.next(); err != nil {
		return err
	}
	if v.kind != mpArray || v.n < 2 || v.n > numFields {
		return fmt.Errorf("record fields: %s of %d", v.kind, v.n)
	}
	var base int64
	for k := range v.n {
		f := recordFields[k]
		x, err := d.next()
		if err != nil {
			return fmt.Errorf("field %s: %w", f.name, err)
		}
		if x.kind == mpFalse {
			continue
		}
		ok := true
		switch f.enc {
		case encBase:
			ok = x.kind == mpString && len(x.str) == 6
			if ok {
				u := uint64(x.str[0])<<40 | uint64(x.str[1])<<32 | uint64(x.str[2])<<24 |
					uint64(x.str[3])<<16 | uint64(x.str[4])<<8 | uint64(x.str[5])
				base = int64(u<<16) >> 16 // sign-extend 48 bits
				r.num[k] = base
			}
		case encStr:
			ok = x.kind == mpString
			r.str[k] = x.str
		case encStatus:
			switch {
			case x.kind == mpString:
				r.str[k] = x.str
			case x.kind == mpInt && x.i >= 1 && x.i <= int64(len(recordStatuses)):
				r.str[k] = string(recordStatuses[x.i-1])
			default:
				ok = false
			}
		case encTime:
			ok = x.kind == mpInt
			r.num[k] = base + x.i
		case encInt:
			ok = x.kind == mpInt
			r.num[k] = x.i
		case encSource:
			switch x.kind {
			case mpTrue:
				r.derived = true
			case mpInt:
				r.num[k] = base + x.i
			default:
				ok = false
			}
		case encFunnel:
			ok = x.kind == mpInt || x.kind == mpArray
			if x.kind == mpArray {
				err = d.skip(x.n)
			}
		case encEvents:
			ok = x.kind == mpArray
			if ok {
				err = d.skip(x.n)
			}
		}
		if err != nil {
			return fmt.Errorf("field %s: %w", f.name, err)
		}
		if !ok {
			return fmt.Errorf("field %s: unexpected %s", f.name, x.kind)
		}
		r.present |= 1 << k
	}
	return nil
}
