package persona

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// object is a JSON object of a decoded body whose keys may be in any of Persona's three
// inflections. Lookups take the kebab-case name and try the other two spellings.
//
// It lists the object's members in order with each value's raw JSON text, and a value is
// decoded only when looked up: a Persona event is 3-4 KB of which resumer reads some twenty
// values, and decoding the whole tree (behaviors, fields, included sessions) into maps was
// most of the cost of receiving and applying an event. decodeObject validates the whole body
// in one pass and notes where every object and array ends, so reading a nested object
// never scans the body again.
type object []member

// member is one key of an object with its value. key is unquoted: a sub-slice of the body
// when the key has no escapes (every key Persona sends), else a copy.
type member struct {
	key []byte
	doc *document
	// start and end delimit the value's text in doc.text.
	start, end int
}

func (m *member) raw() []byte { return m.doc.text[m.start:m.end] }

// document is a valid JSON text with the extent of each of its objects and arrays.
type document struct {
	text []byte
	// starts holds the offset of every '{' and '[' outside strings, ascending; ends[k] is
	// the offset just after the container that starts at starts[k], and sizes[k] the
	// number of its members or elements.
	starts, ends, sizes []int
}

// maxNestingDepth is encoding/json's limit: deeper nesting is invalid JSON.
const maxNestingDepth = 10000

// errNotObject reports a value that should be a JSON object but is something else.
var errNotObject = errors.New("not a JSON object")

// decodeObject decodes a JSON text whose top level is an object. It fails, as json.Unmarshal
// would, when body is not valid JSON, and with errNotObject when its top level is another
// value; for null it returns nil and no error.
func decodeObject(body []byte) (object, error) {
	doc, ok := scanDocument(body)
	if !ok {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, err // the syntax error, with its offset
		}
		return nil, errors.New("invalid JSON")
	}
	i := skipSpace(body, 0)
	switch body[i] {
	case '{':
		return doc.object(i), nil
	case 'n':
		return nil, nil
	default:
		return nil, errNotObject
	}
}

func (o object) get(kebab string) *member {
	if m := o.lookup(kebab); m != nil {
		return m
	}
	if !strings.Contains(kebab, "-") {
		return nil
	}
	if m := o.lookup(strings.ReplaceAll(kebab, "-", "_")); m != nil {
		return m
	}
	return o.lookup(camel(kebab))
}

// lookup returns the member named key; of a key given twice, the last, as json.Unmarshal
// keeps. It is nil when there is none.
func (o object) lookup(key string) *member {
	for i := len(o) - 1; i >= 0; i-- {
		if string(o[i].key) == key {
			return &o[i]
		}
	}
	return nil
}

// kind returns the first byte of the value at key: '{', '[', '"', 'n' (null), ...; 0 when
// absent.
func (o object) kind(key string) (*member, byte) {
	m := o.get(key)
	if m == nil {
		return nil, 0
	}
	return m, m.doc.text[m.start]
}

// object returns the nested object at key; nil with no error when absent or null, and an
// error when it is another kind of value.
func (o object) object(key string) (object, error) {
	switch m, k := o.kind(key); k {
	case 0, 'n':
		return nil, nil
	case '{':
		return m.doc.object(m.start), nil
	default:
		return nil, fmt.Errorf("%s: %w", key, errNotObject)
	}
}

// objects returns the array of objects at key (entries that are not objects are skipped);
// nil with no error when absent or null.
func (o object) objects(key string) ([]object, error) {
	m, k := o.kind(key)
	switch k {
	case 0, 'n':
		return nil, nil
	case '[':
	default:
		return nil, fmt.Errorf("%s: not an array", key)
	}
	d, b := m.doc, m.doc.text
	out := []object{}
	for i := skipSpace(b, m.start+1); i < m.end && b[i] != ']'; {
		end := d.skipValue(i)
		if b[i] == '{' {
			out = append(out, d.object(i))
		}
		i = skipSpace(b, end)
		if i < m.end && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return out, nil
}

// str returns the string at key; "" when absent, null or not a string.
func (o object) str(key string) string {
	m, k := o.kind(key)
	if k != '"' {
		return ""
	}
	return unquote(m.raw())
}

// time returns the RFC 3339 time at key; zero when absent, null or unparseable (Persona's own
// samples are inconsistent, PERSONA.md §3).
func (o object) time(key string) time.Time {
	s := o.str(key)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// fieldValue reads an inquiry field, which Persona wraps as {"type": ..., "value": ...}; a
// bare string is accepted too.
func (o object) fieldValue(key string) string {
	if s := o.str(key); s != "" {
		return s
	}
	f, _ := o.object(key)
	if f == nil {
		return ""
	}
	return f.str("value")
}

// camel turns "email-address" into "emailAddress".
func camel(kebab string) string {
	var b strings.Builder
	b.Grow(len(kebab))
	up := false
	for i := 0; i < len(kebab); i++ {
		c := kebab[i]
		if c == '-' {
			up = true
			continue
		}
		if up && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up = false
		b.WriteByte(c)
	}
	return b.String()
}

// object splits the object starting at offset i into its members.
func (d *document) object(i int) object {
	b := d.text
	end, size := len(b), 8
	if k := sort.SearchInts(d.starts, i); k < len(d.starts) && d.starts[k] == i {
		end, size = d.ends[k], d.sizes[k]
	}
	o := make(object, 0, size)
	i = skipSpace(b, i+1)
	for i < end && b[i] == '"' {
		kend := skipString(b, i)
		key := b[i:kend]
		if plain(key) {
			key = key[1 : len(key)-1]
		} else {
			key = []byte(unquote(key))
		}
		i = skipSpace(b, kend)
		if i >= end || b[i] != ':' {
			return o
		}
		i = skipSpace(b, i+1)
		vend := d.skipValue(i)
		o = append(o, member{key: key, doc: d, start: i, end: vend})
		i = skipSpace(b, vend)
		if i >= end || b[i] != ',' {
			return o
		}
		i = skipSpace(b, i+1)
	}
	return o
}

// skipValue returns the offset just after the value starting at offset i: for an object or
// an array from the table scanDocument made, for a string or a literal by scanning it.
func (d *document) skipValue(i int) int {
	b := d.text
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		k := sort.SearchInts(d.starts, i)
		if k < len(d.starts) && d.starts[k] == i {
			return d.ends[k]
		}
		return len(b)
	default: // a number, true, false or null
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' &&
			b[i] != '\n' && b[i] != '\r' && b[i] != '\t' {
			i++
		}
		return i
	}
}

// skipSpace returns the offset of the first byte at or after i that is not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the offset just after the string starting at b[i] (a '"').
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i++ // skip the escaped character
		}
	}
	return len(b)
}

// unquote returns the string whose JSON text (quotes included) is raw, decoded exactly as
// json.Unmarshal decodes it (escapes; invalid UTF-8 becomes U+FFFD). Plain ASCII without
// escapes, nearly every Persona string, is copied as it is.
func unquote(raw []byte) string {
	if len(raw) < 2 {
		return ""
	}
	if plain(raw) {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return ""
	}
	return s
}

// plain reports whether the quoted string raw holds only printable ASCII without escapes,
// so that its text between the quotes is its value.
func plain(raw []byte) bool {
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

// validJSON reports whether b is one JSON value with optional whitespace around it, exactly
// as json.Valid does.
func validJSON(b []byte) bool {
	_, ok := scanDocument(b)
	return ok
}

// scanDocument checks that b is one JSON value with optional whitespace around it, accepting
// exactly what json.Valid accepts (strings may hold invalid UTF-8; nesting deeper than
// maxNestingDepth is invalid), in one pass several times faster than encoding/json's
// scanner. It notes the extent of every object and array on the way.
func scanDocument(b []byte) (*document, bool) {
	d := &document{text: b, starts: make([]int, 0, 64), ends: make([]int, 0, 64), sizes: make([]int, 0, 64)}
	var buf [64]int
	open := buf[:0] // index in starts of every container open at i
	i := 0
	for {
		// A value starts at i, after whitespace.
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, false
		}
		switch c := b[i]; c {
		case '{', '[':
			if len(open) == maxNestingDepth {
				return nil, false
			}
			open = append(open, len(d.starts))
			d.starts = append(d.starts, i)
			d.ends = append(d.ends, 0)
			d.sizes = append(d.sizes, 1)
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' and ']' follow '{' and '[' by two
				d.sizes[open[len(open)-1]] = 0
				d.ends[open[len(open)-1]] = i + 1
				open = open[:len(open)-1]
				i++
				break
			}
			if c == '{' {
				i = scanKey(b, i)
			}
			if i < 0 {
				return nil, false
			}
			continue
		case '"':
			i = scanString(b, i)
		case 't':
			i = scanLiteral(b, i, "true")
		case 'f':
			i = scanLiteral(b, i, "false")
		case 'n':
			i = scanLiteral(b, i, "null")
		default:
			i = scanNumber(b, i)
		}
		if i < 0 {
			return nil, false
		}
		// A value ended at i: close containers, or move on to the next element or member.
		for {
			i = skipSpace(b, i)
			if len(open) == 0 {
				return d, i == len(b)
			}
			if i >= len(b) {
				return nil, false
			}
			top := open[len(open)-1]
			if b[i] == b[d.starts[top]]+2 {
				d.ends[top] = i + 1
				open = open[:len(open)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return nil, false
			}
			d.sizes[top]++
			i = skipSpace(b, i+1)
			if b[d.starts[top]] == '{' {
				if i = scanKey(b, i); i < 0 {
					return nil, false
				}
			}
			break
		}
	}
}

// scanKey checks an object key and its colon at b[i]; it returns the offset after the
// colon, or -1.
func scanKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = scanString(b, i); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return i + 1
}

// scanString checks the string at b[i] (a '"'); it returns the offset after it, or -1.
func scanString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		// Most bytes of a string need no check but this one: skip them 8 at a time.
		for i+8 <= len(b) && plainInString[b[i]]&plainInString[b[i+1]]&plainInString[b[i+2]]&plainInString[b[i+3]]&
			plainInString[b[i+4]]&plainInString[b[i+5]]&plainInString[b[i+6]]&plainInString[b[i+7]] == 1 {
			i += 8
		}
		for i < len(b) && plainInString[b[i]] == 1 {
			i++
		}
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return -1
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// plainInString is 1 for the bytes a JSON string may contain as they are (all but control
// characters, '"' and the backslash), 0 for the others.
var plainInString = func() (t [256]uint8) {
	for c := range t {
		if c >= 0x20 && c != '"' && c != '\\' {
			t[c] = 1
		}
	}
	return t
}()

// scanLiteral checks that b[i:] starts with lit; it returns the offset after it, or -1.
func scanLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanNumber checks the number at b[i], -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; it
// returns the offset after it, or -1.
func scanNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

// digits returns the offset after the decimal digits starting at b[i].
func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
