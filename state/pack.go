package state

import (
	"crypto/sha256"
	"strings"
)

// Persona ids, event names and stage lists are stored in a packed form that only Go reads:
// the scripts compare and copy them but never look inside. A packed value that would start
// with a byte below 0x20 (the tags of the packed forms) is stored with a 0x00 byte before it.

// idPrefixes are the Persona id prefixes packID packs; a packed id's first byte is its
// prefix's position here plus one. Only append.
var idPrefixes = []string{"inq_", "evt_", "act_", "itmpl_"}

// idDigits are the characters of a packable id, in byte order: a packed id's 6-bit digits are
// their positions here, so packed ids of one prefix sort like the ids themselves.
const idDigits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// idDigit maps a byte to its position in idDigits, -1 when it is none of them.
var idDigit = func() (t [256]int8) {
	for i := range t {
		t[i] = int8(strings.IndexByte(idDigits, byte(i)))
	}
	return t
}()

// idLen is the number of characters after the prefix of a packable id, packedLen the
// number of bytes they pack into.
const (
	idLen     = 24
	packedLen = idLen * 6 / 8
)

// packID packs a Persona id of the form <prefix><24 of [0-9A-Za-z]> into 19 bytes: the
// prefix's tag and 24 6-bit digits. Other ids are stored as they are.
func packID(id string) string {
	for p, prefix := range idPrefixes {
		rest, ok := strings.CutPrefix(id, prefix)
		if !ok || len(rest) != idLen {
			continue
		}
		out := make([]byte, 1, 1+packedLen)
		out[0] = byte(p + 1)
		for i := 0; i < idLen; i += 4 {
			var v uint32
			for _, c := range []byte(rest[i : i+4]) {
				d := idDigit[c]
				if d < 0 {
					return escape(id)
				}
				v = v<<6 | uint32(d)
			}
			out = append(out, byte(v>>16), byte(v>>8), byte(v))
		}
		return string(out)
	}
	return escape(id)
}

// isIDTag reports whether b is the first byte of a packed id.
func isIDTag(b byte) bool { return b >= 1 && int(b) <= len(idPrefixes) }

// isPackedID reports whether s is an id packed by packID.
func isPackedID(s string) bool { return len(s) == 1+packedLen && isIDTag(s[0]) }

// unpackID is packID's inverse.
func unpackID(s string) string {
	if isPackedID(s) {
		var b strings.Builder
		b.WriteString(idPrefixes[s[0]-1])
		for i := 1; i < len(s); i += 3 {
			v := uint32(s[i])<<16 | uint32(s[i+1])<<8 | uint32(s[i+2])
			for shift := 18; shift >= 0; shift -= 6 {
				d := int(v>>shift) & 63
				if d >= len(idDigits) {
					return s // not written by packID
				}
				b.WriteByte(idDigits[d])
			}
		}
		return b.String()
	}
	return unescape(s)
}

// eventNames are the event names stored as one byte, their position here plus one. Only
// append.
var eventNames = []string{
	"inquiry.created", "inquiry.started", "inquiry.completed", "inquiry.failed",
	"inquiry.expired", "inquiry.marked-for-review", "inquiry.approved", "inquiry.declined",
	"inquiry.redacted", "inquiry.transitioned", "inquiry-session.started",
	"inquiry-session.expired", "inquiry-session.canceled",
}

// packEventName returns the stored form of an event name.
func packEventName(name string) string {
	for i, n := range eventNames {
		if n == name {
			return string(rune(i + 1))
		}
	}
	return escape(name)
}

// unpackEventName is packEventName's inverse.
func unpackEventName(s string) string {
	if len(s) == 1 && s[0] >= 1 && int(s[0]) <= len(eventNames) {
		return eventNames[s[0]-1]
	}
	return unescape(s)
}

func escape(s string) string {
	if s != "" && s[0] < 0x20 {
		return "\x00" + s
	}
	return s
}

func unescape(s string) string {
	if s != "" && s[0] == 0 {
		return s[1:]
	}
	return s
}

// handleLen is the length of an inquiry's handle.
const handleLen = 12

// splitID splits an inquiry id into its handle, the 12 bytes that name the inquiry in its
// shard's records hash and indexes (12 bytes fit Redis' smallest string allocation, where a
// 28-character id takes the next size up, twice per inquiry), and the rest, which its record
// keeps; joinID rebuilds the id from the two.
//
// A Persona id packs into a tag and 18 bytes (packID): the handle is the first 12 bytes
// masked with a hash of the rest (the tag and the last 6 bytes), so handles look random even
// if Persona's ids share prefixes, and two ids with one handle differ in their rest. Another
// id's handle is a hash of it and its rest is the whole id. Either way a record whose rest is
// not the inquiry's belongs to another inquiry with the same handle: the scripts refuse to
// apply to it and Store.Inquiry does not return it (a chance of about n²/2^97 for n
// inquiries in one shard).
func splitID(id string) (handle, rest string) {
	if p := packID(id); isPackedID(p) {
		rest = p[:1] + p[1+handleLen:]
		mask := sha256.Sum256([]byte(rest))
		h := make([]byte, handleLen)
		for i := range h {
			h[i] = p[1+i] ^ mask[i]
		}
		return string(h), rest
	}
	sum := sha256.Sum256([]byte(id))
	return string(sum[:handleLen]), escape(id)
}

// handleOf returns the handle of inquiry id (see splitID).
func handleOf(id string) string {
	h, _ := splitID(id)
	return h
}

// joinID is splitID's inverse.
func joinID(handle, rest string) string {
	if len(rest) == 1+packedLen-handleLen && isIDTag(rest[0]) && len(handle) == handleLen {
		mask := sha256.Sum256([]byte(rest))
		p := make([]byte, 0, 1+packedLen)
		p = append(p, rest[0])
		for i := range handleLen {
			p = append(p, handle[i]^mask[i])
		}
		return unpackID(string(append(p, rest[1:]...)))
	}
	return unescape(rest)
}
