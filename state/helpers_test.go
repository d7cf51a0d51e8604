package state

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
)

// t0 is the base event time of the tests.
var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// clock is an injectable clock safe for concurrent use.
type clock struct{ ms atomic.Int64 }

func newClock(at time.Time) *clock {
	c := &clock{}
	c.ms.Store(at.UnixMilli())
	return c
}

func (c *clock) Now() time.Time      { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *clock) Set(at time.Time)    { c.ms.Store(at.UnixMilli()) }

// crc16 is the CRC16-XMODEM Redis Cluster uses for key slots.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// keySlot is the Redis Cluster slot of key: the CRC16 of its hash tag (the part between the
// first '{' and the next '}', when not empty) or of the whole key, modulo 16384.
func keySlot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	return int(crc16([]byte(key)) % 16384)
}

// slotChecker is a redis.Hook that fails the test when a script invocation (EVAL, EVALSHA)
// touches keys of more than one cluster slot. Besides KEYS it checks every argument that
// starts with the store's prefix, such as the record key prefix the scripts build purge keys
// from (with an inquiry id appended it stays in the slot, since the tag comes first).
type slotChecker struct {
	tb     testing.TB
	prefix string
	calls  atomic.Int64
}

func (h *slotChecker) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *slotChecker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.check(cmd)
		return next(ctx, cmd)
	}
}

func (h *slotChecker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.check(cmd)
		}
		return next(ctx, cmds)
	}
}

func (h *slotChecker) check(cmd redis.Cmder) {
	switch strings.ToLower(cmd.Name()) {
	case "eval", "evalsha", "eval_ro", "evalsha_ro":
	default:
		return
	}
	args := cmd.Args()
	n, err := toInt(args[2])
	if err != nil {
		h.tb.Errorf("%s: numkeys %v: %v", cmd.Name(), args[2], err)
		return
	}
	h.calls.Add(1)
	var names []string
	for i, a := range args[3:] {
		s, ok := a.(string)
		if i < n || (ok && strings.HasPrefix(s, h.prefix+":")) {
			names = append(names, fmt.Sprint(a))
		}
	}
	if len(names) == 0 {
		h.tb.Errorf("%s without keys", cmd.Name())
		return
	}
	for _, k := range names {
		if !strings.HasPrefix(k, h.prefix+":{") {
			h.tb.Errorf("%s key %q has no hash tag after the prefix", cmd.Name(), k)
		}
		if keySlot(k) != keySlot(names[0]) {
			h.tb.Errorf("%s touches two slots: %q (%d) and %q (%d)", cmd.Name(), names[0], keySlot(names[0]), k, keySlot(k))
		}
	}
}

func toInt(v any) (int, error) {
	switch v := v.(type) {
	case int:
		return v, nil
	case int64:
		return int(v), nil
	case string:
		var n int
		_, err := fmt.Sscan(v, &n)
		return n, err
	}
	return 0, fmt.Errorf("unexpected type %T", v)
}

// fixture is a Store on the shared test Redis with its own prefix, a slot checker on every
// script call and an injected clock.
type fixture struct {
	store  *Store
	client redis.UniversalClient
	clock  *clock
	slots  *slotChecker
	prefix string
	// leaseShift is added to Redis's TIME for leases (Config.LeaseClockOffset): passLease
	// moves it on to let leases run out.
	leaseShift atomic.Int64
}

// passLease lets every lease taken so far run out, by moving the lease clock on by d.
func (f *fixture) passLease(d time.Duration) { f.leaseShift.Add(int64(d)) }

// newFixture returns a fixture whose clock starts at t0+1h. edit may change the Config.
func newFixture(t testing.TB, edit ...func(*Config)) *fixture {
	t.Helper()
	client, prefix := testenv.Redis(t)
	return fixtureOn(t, client, prefix, edit...)
}

func fixtureOn(t testing.TB, client redis.UniversalClient, prefix string, edit ...func(*Config)) *fixture {
	t.Helper()
	f := &fixture{client: client, clock: newClock(t0.Add(time.Hour)), prefix: prefix}
	f.slots = &slotChecker{tb: t, prefix: prefix}
	client.AddHook(f.slots)
	cfg := Config{
		Prefix:           prefix,
		Shards:           8,
		ExpiryByTemplate: map[string]time.Duration{"itmpl_short": 2 * time.Hour},
		Now:              f.clock.Now,
		LeaseClockOffset: func() time.Duration { return time.Duration(f.leaseShift.Load()) },
	}
	for _, e := range edit {
		e(&cfg)
	}
	s, err := New(client, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.store = s
	return f
}

// apply applies ev and fails the test on an error.
func (f *fixture) apply(t testing.TB, ev *persona.Event) Outcome {
	t.Helper()
	o, err := f.store.Apply(context.Background(), ev)
	if err != nil {
		t.Fatalf("Apply(%s %s): %v", ev.ID, ev.Name, err)
	}
	return o
}

// inquiry reads a record and fails the test when there is none.
func (f *fixture) inquiry(t testing.TB, id string) *Inquiry {
	t.Helper()
	inq, err := f.store.Inquiry(context.Background(), id)
	if err != nil {
		t.Fatalf("Inquiry(%s): %v", id, err)
	}
	return inq
}

// rawRecord returns the decoded fields of inquiry id's stored record (see decodeRecord), or
// nil when there is none.
func (f *fixture) rawRecord(t testing.TB, id string) map[string]string {
	t.Helper()
	raw, err := f.client.HGet(context.Background(), f.store.keys.recordsOf(id), handleOf(id)).Result()
	if err == redis.Nil {
		return nil
	}
	if err != nil {
		t.Fatalf("HGET record %s: %v", id, err)
	}
	h, err := recordMap(raw)
	if err != nil {
		t.Fatalf("decode record %s: %v", id, err)
	}
	return h
}

// recordMap decodes a stored record into a map of its present fields (the rest of the id under
// fieldIDRest): times, counts and the template code as decimal integers, flags as "1", the
// account, last event id and name unpacked. The remembered events are left out.
func recordMap(raw string) (map[string]string, error) {
	var r record
	if err := decodeRecord(raw, &r); err != nil {
		return nil, err
	}
	h := map[string]string{fieldIDRest: r.rest}
	for k, f := range recordFields {
		if !r.has(k) {
			continue
		}
		switch f.enc {
		case encStr, encStatus:
			h[f.name] = r.str[k]
		case encBase, encTime, encInt:
			h[f.name] = strconv.FormatInt(r.num[k], 10)
		case encSource:
			h[f.name] = "derived"
			if !r.derived {
				h[f.name] = strconv.FormatInt(r.num[k], 10)
			}
		}
	}
	for _, name := range []string{fieldAccount, fieldLastEventID} {
		if v, ok := h[name]; ok {
			h[name] = unpackID(v)
		}
	}
	if v, ok := h[fieldLastName]; ok {
		h[fieldLastName] = unpackEventName(v)
	}
	return h, nil
}

// score returns inquiry id's score in the zset key and whether it is a member (by its
// handle, see splitID).
func (f *fixture) score(t testing.TB, key, id string) (float64, bool) {
	t.Helper()
	v, err := f.client.ZScore(context.Background(), key, handleOf(id)).Result()
	if err == redis.Nil {
		return 0, false
	}
	if err != nil {
		t.Fatalf("ZSCORE %s %s: %v", key, id, err)
	}
	return v, true
}

// inExpiry returns the expiry index score of inquiry id, and whether it is indexed.
func (f *fixture) inExpiry(t testing.TB, id string) (float64, bool) {
	t.Helper()
	return f.score(t, f.store.keys.expiry(f.store.keys.shard(id)), id)
}

// inRetention returns the retention index score of inquiry id, and whether it is indexed.
func (f *fixture) inRetention(t testing.TB, id string) (float64, bool) {
	t.Helper()
	return f.score(t, f.store.keys.retained(f.store.keys.shard(id)), id)
}

func (f *fixture) counts(t testing.TB) map[persona.Status]int64 {
	t.Helper()
	c, err := f.store.CountByStatus(context.Background())
	if err != nil {
		t.Fatalf("CountByStatus: %v", err)
	}
	return c
}

// snap is an inquiry snapshot as Persona's payloads carry it.
type snap = persona.Inquiry

// ev builds an event about inquiry inq at time at; payload nil makes an inquiry-session event.
func ev(id, name, inq string, at time.Time, payload *snap) *persona.Event {
	e := &persona.Event{ID: id, Name: name, CreatedAt: at, InquiryID: inq, PayloadType: "inquiry-session"}
	if payload != nil {
		p := *payload
		p.ID = inq
		e.Inquiry, e.PayloadType = &p, "inquiry"
	}
	return e
}

// forInquiry copies events, re-addressed to inquiry id.
func forInquiry(events []*persona.Event, id string) []*persona.Event {
	out := make([]*persona.Event, len(events))
	for i, e := range events {
		c := *e
		c.InquiryID = id
		if e.Inquiry != nil {
			p := *e.Inquiry
			p.ID = id
			c.Inquiry = &p
		}
		out[i] = &c
	}
	return out
}
