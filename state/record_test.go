package state

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
)

// encodeRecord is the test's encoder of the format decodeRecord reads (lib.lua's encode, with
// cmsgpack's choice of MessagePack encodings): h holds fields as recordMap returns them, events
// the remembered events (digest, second seen minus u's second).
func encodeRecord(t *testing.T, h map[string]string, events [][2]any) string {
	t.Helper()
	var b []byte
	be := func(v uint64, n int) {
		for i := n - 1; i >= 0; i-- {
			b = append(b, byte(v>>(8*i)))
		}
	}
	integer := func(v int64) {
		switch {
		case v >= 0 && v <= 127:
			b = append(b, byte(v))
		case v >= 0 && v <= 0xff:
			b = append(b, 0xcc, byte(v))
		case v >= 0 && v <= 0xffff:
			b = append(b, 0xcd)
			be(uint64(v), 2)
		case v >= 0 && v <= 0xffffffff:
			b = append(b, 0xce)
			be(uint64(v), 4)
		case v >= 0:
			b = append(b, 0xcf)
			be(uint64(v), 8)
		case v >= -32:
			b = append(b, byte(v))
		case v >= -128:
			b = append(b, 0xd0, byte(v))
		case v >= -32768:
			b = append(b, 0xd1)
			be(uint64(v), 2)
		case v >= -1<<31:
			b = append(b, 0xd2)
			be(uint64(v), 4)
		default:
			b = append(b, 0xd3)
			be(uint64(v), 8)
		}
	}
	str := func(s string) {
		switch {
		case len(s) < 32:
			b = append(b, 0xa0|byte(len(s)))
		case len(s) <= 0xff:
			b = append(b, 0xd9, byte(len(s)))
		default:
			b = append(b, 0xda)
			be(uint64(len(s)), 2)
		}
		b = append(b, s...)
	}
	num := func(name string) int64 {
		v, err := strconv.ParseInt(h[name], 10, 64)
		if err != nil {
			t.Fatalf("field %s: %v", name, err)
		}
		return v
	}
	str(h[fieldIDRest])
	n := numFields
	for n > 2 {
		if _, ok := h[recordFields[n-1].name]; ok || (n-1 == idxEvents && len(events) > 0) {
			break
		}
		n--
	}
	if n <= 15 {
		b = append(b, 0x90|byte(n))
	} else {
		b = append(b, 0xdc)
		be(uint64(n), 2)
	}
	base := num(fieldLastAt)
	for k, f := range recordFields[:n] {
		v, ok := h[f.name]
		if f.enc == encEvents {
			ok = len(events) > 0
		}
		if !ok {
			b = append(b, 0xc2)
			continue
		}
		switch f.enc {
		case encBase:
			b = append(b, 0xa6) // a 6-byte string
			be(uint64(base), 6)
		case encStr:
			switch k {
			case idxAccount, idxLastEventID:
				v = packID(v)
			case idxLastName:
				v = packEventName(v)
			}
			str(v)
		case encStatus:
			if i := slices.Index(recordStatuses, persona.Status(v)); i >= 0 {
				integer(int64(i + 1))
			} else {
				str(v)
			}
		case encTime:
			integer(num(f.name) - base)
		case encInt:
			integer(num(f.name))
		case encSource:
			if v == "derived" {
				b = append(b, 0xc3)
			} else {
				integer(num(f.name) - base)
			}
		case encEvents:
			b = append(b, 0x90|byte(1+len(events)))
			digests := ""
			for _, e := range events {
				digests += e[0].(string)
			}
			str(digests)
			for _, e := range events {
				integer(int64(e[1].(int)))
			}
		}
	}
	return string(b)
}

// TestRecordCodec checks that lib.lua's codec and decodeRecord agree: a record encoded by the
// test survives the script's decode and encode byte for byte, and decodeRecord returns its
// fields.
func TestRecordCodec(t *testing.T) {
	f := newFixture(t)
	roundTrip := func(b string) string {
		t.Helper()
		v, err := f.client.Eval(context.Background(), libLua+"\nreturn encode(decode(ARGV[1]))",
			[]string{f.store.keys.counts(0)}, b).Text()
		if err != nil {
			t.Fatalf("script round trip: %v", err)
		}
		return v
	}
	full := map[string]string{
		fieldIDRest: "\x01rest67", fieldStatus: "pending", fieldStatusAt: "1767607260000", fieldReference: "user-1",
		fieldTemplate: "3", fieldAccount: "act_Ygs16MKTkA6obnF8C3Rb17dm",
		fieldCreatedAt: "1767607200000", fieldStartedAt: "1767607260000", fieldExpiresAt: "1767693600000",
		fieldLastEventID: "evt_Lk2jH5gF8dS1aQ4wE7rT0yU3", fieldLastName: "inquiry.started",
		fieldLastAt: "1767607260000", fieldEmail: strings.Repeat("j", 300) + "@example.com",
		fieldNameFirst: "Jane", fieldUpdatedAt: "1767610000000", fieldCompletedAt: "-5",
		fieldExpiredAt: "4102444800000", fieldExpirySource: "derived", fieldReminders: "6h,1h@email",
		fieldAttempts: "300", fieldDropped: "status 409",
	}
	events := [][2]any{{"digst1", 0}, {"digst2", -2}} // seen at u's second, and 2 seconds before
	for _, tc := range []struct {
		name string
		h    map[string]string
		n    int
	}{
		{"every field", full, 2},
		{"expiry carried by an older event", map[string]string{fieldIDRest: "inq_x", fieldStatus: "pending", fieldStatusAt: "1767607230000",
			fieldExpiresAt: "1767693600000", fieldExpirySource: "1767607200000", fieldLastEventID: "evt_x", fieldLastName: "inquiry-session.started",
			fieldLastAt: "1767607260000", fieldUpdatedAt: "1767607260000"}, 1},
		{"session event only", map[string]string{fieldIDRest: "inq_x", fieldLastEventID: "evt_x", fieldLastName: "inquiry-session.started", fieldLastAt: "1767607260000", fieldUpdatedAt: "1767607260000"}, 1},
		{"unknown status, odd ids", map[string]string{fieldIDRest: "", fieldLastAt: "-5", fieldStatus: strings.Repeat("p", 40), fieldStatusAt: "0",
			fieldAccount: "\x01act", fieldTemplate: "200", fieldLastName: "\x02odd", fieldLastEventID: "inq_" + strings.Repeat("z", 24)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := encodeRecord(t, tc.h, events[:tc.n])
			if got := roundTrip(b); got != b {
				t.Errorf("script round trip changed the record:\n got %q\nwant %q", got, b)
			}
			got, err := recordMap(b)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.h) {
				t.Errorf("decodeRecord:\n got %v\nwant %v", got, tc.h)
			}
			for i := range len(b) {
				if _, err := recordMap(b[:i]); err == nil {
					t.Errorf("decodeRecord of the first %d of %d bytes succeeded", i, len(b))
				}
			}
		})
	}
}

// TestPackID checks the packed forms of ids and event names.
func TestPackID(t *testing.T) {
	for _, id := range []string{
		"inq_Lk2jH5gF8dS1aQ4wE7rT0yU3", "evt_000000000000000000000000", "act_zzzzzzzzzzzzzzzzzzzzzzzz",
		"itmpl_Ygs16MKTkA6obnF8C3Rb17dm", "inq_short", "inq_Lk2jH5gF8dS1aQ4wE7rT0yU!", "ver_Lk2jH5gF8dS1aQ4wE7rT0yU3",
		"", "\x00x", "\x01\x02", "user-1",
	} {
		p := packID(id)
		if got := unpackID(p); got != id {
			t.Errorf("unpackID(packID(%q)) = %q", id, got)
		}
		if id == "inq_Lk2jH5gF8dS1aQ4wE7rT0yU3" && len(p) != 19 {
			t.Errorf("packID(%q) is %d bytes, want 19", id, len(p))
		}
	}
	// Packed ids of one kind sort like the ids (the apply script orders last events by id).
	a, b := "evt_Lk2jH5gF8dS1aQ4wE7rT0yU3", "evt_Lk2jH5gF8dS1aQ4wE7rT0yUa"
	if !(packID(a) < packID(b)) {
		t.Errorf("packID does not keep the order of %s < %s", a, b)
	}
	for _, name := range append(slices.Clone(eventNames), "inquiry.frobnicated", "", "\x01x") {
		if got := unpackEventName(packEventName(name)); got != name {
			t.Errorf("unpackEventName(packEventName(%q)) = %q", name, got)
		}
	}
}

// TestTemplateCodes: records keep a per-shard code for their template id; every inquiry reads
// back its own template, also after a newer event changed it.
func TestTemplateCodes(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Shards = 1 })
	ctx := context.Background()
	templates := []string{"itmpl_Ygs16MKTkA6obnF8C3Rb17dm", "itmpl_b", "itmpl_Ygs16MKTkA6obnF8C3Rb17dm", "itmpl_c"}
	for i, tpl := range templates {
		f.apply(t, ev("evt_1", "inquiry.created", fmt.Sprintf("inq_%d", i), t0, base(persona.StatusCreated, tpl)))
	}
	f.apply(t, ev("evt_2", "inquiry.transitioned", "inq_3", t0.Add(time.Minute), base(persona.StatusCreated, "itmpl_b")))
	f.apply(t, ev("evt_3", "inquiry.transitioned", "inq_1", t0.Add(-time.Minute), base(persona.StatusCreated, "itmpl_d"))) // older: no change
	for i, want := range []string{templates[0], "itmpl_b", templates[0], "itmpl_b"} {
		if got := f.inquiry(t, fmt.Sprintf("inq_%d", i)).TemplateID; got != want {
			t.Errorf("inq_%d: template %q, want %q", i, got, want)
		}
	}
	if n, err := f.client.HLen(ctx, f.store.keys.templates(0)).Result(); err != nil || n != 8 {
		t.Errorf("templates hash has %d fields, %v; want 8 (4 templates, both ways)", n, err)
	}
	list, err := f.store.Expiring(ctx, 48*time.Hour, 10)
	if err != nil || len(list) != 4 {
		t.Fatalf("Expiring = %d, %v", len(list), err)
	}
	for _, inq := range list {
		if inq.TemplateID == "" {
			t.Errorf("Expiring: %s without template", inq.ID)
		}
	}
}

// TestSplitID checks that joinID rebuilds every id from its handle and rest, and that a
// Persona id's rest is short.
func TestSplitID(t *testing.T) {
	for _, id := range []string{
		"inq_Lk2jH5gF8dS1aQ4wE7rT0yU3", "inq_Lk2jH5gF8dS1aQ4wE7rT0yU4", "inq_000000000000000000000000",
		"evt_Lk2jH5gF8dS1aQ4wE7rT0yU3", "inq_x", "inq_Lk2jH5gF8dS1aQ4wE7rT0yU!", "", "\x01\x02\x03\x04\x05\x06\x07",
	} {
		handle, rest := splitID(id)
		if len(handle) != handleLen {
			t.Errorf("handle of %q has %d bytes", id, len(handle))
		}
		if got := joinID(handle, rest); got != id {
			t.Errorf("joinID(splitID(%q)) = %q", id, got)
		}
		if strings.HasPrefix(id, "inq_Lk") && len(id) == 28 && strings.IndexByte(id, '!') < 0 && len(rest) != 7 {
			t.Errorf("rest of %q has %d bytes, want 7", id, len(rest))
		}
	}
	// Ids that share all but a few characters, at the start or at the end, get distinct
	// handles; those that share a start differ in more than the last bytes.
	seen := map[string]string{}
	for i := range 2000 {
		n := fmt.Sprintf("%04d", i)
		for _, id := range []string{"inq_" + n + "00000000000000000000", "inq_00000000000000000000" + n} {
			h := handleOf(id)
			if prev, ok := seen[h]; ok && prev != id {
				t.Fatalf("%s and %s share a handle", prev, id)
			}
			seen[h] = id
		}
	}
	if a, b := handleOf("inq_000000000000000000000000"), handleOf("inq_000000000000000000000001"); a[:4] == b[:4] {
		t.Errorf("handles %x and %x share their start", a, b)
	}
}

// TestHandleTaken: a record under an inquiry's handle that belongs to another inquiry (whose
// id has another rest) is neither changed by applying nor returned by Inquiry.
func TestHandleTaken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const id, other = "inq_Lk2jH5gF8dS1aQ4wE7rT0yU3", "inq_Lk2jH5gF8dS1aQ4wE7rT0yU4"
	f.apply(t, ev("evt_1", "inquiry.created", other, t0, base(persona.StatusCreated, "itmpl_std")))
	// Put other's record where id's belongs, as if their handles were equal.
	raw, err := f.client.HGet(ctx, f.store.keys.recordsOf(other), handleOf(other)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.client.HSet(ctx, f.store.keys.recordsOf(id), handleOf(id), raw).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Inquiry(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inquiry(%s) = %v, want ErrNotFound", id, err)
	}
	if _, err := f.store.Apply(ctx, ev("evt_2", "inquiry.created", id, t0, base(persona.StatusCreated, "itmpl_std"))); err == nil {
		t.Errorf("Apply to a taken handle succeeded")
	}
	if got := f.rawRecord(t, id); got[fieldIDRest] != f.rawRecord(t, other)[fieldIDRest] {
		t.Errorf("the record under the taken handle changed")
	}
}
