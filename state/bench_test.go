package state

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
)

// personaID imitates Persona's ids: a type prefix and 24 base58-ish characters.
func personaID(kind string, n int) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	var b strings.Builder
	b.WriteString(kind)
	b.WriteByte('_')
	x := uint64(n)*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	for range 24 {
		b.WriteByte(alphabet[x%uint64(len(alphabet))])
		x = x*6364136223846793005 + 1442695040888963407
	}
	return b.String()
}

// pendingEvents are the two events that make inquiry n pending, as Persona sends them: an
// inquiry.created and an inquiry.started carrying expires-at, e-mail and first name.
func pendingEvents(n int, at time.Time) []*persona.Event {
	id := personaID("inq", n)
	inq := &persona.Inquiry{
		ID: id, Status: persona.StatusCreated, ReferenceID: "user-" + strconv.Itoa(100000+n),
		TemplateID: "itmpl_Ygs16MKTkA6obnF8C3Rb17dm", AccountID: personaID("act", n+7919),
		CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour),
		EmailAddress: fmt.Sprintf("jane.doe%d@example.com", n), NameFirst: "Jane",
	}
	started := *inq
	started.Status, started.StartedAt = persona.StatusPending, at.Add(time.Minute)
	return []*persona.Event{
		{ID: personaID("evt", 2*n), Name: "inquiry.created", CreatedAt: at, InquiryID: id, PayloadType: "inquiry", Inquiry: inq},
		{ID: personaID("evt", 2*n+1), Name: "inquiry.started", CreatedAt: at.Add(time.Minute), InquiryID: id, PayloadType: "inquiry", Inquiry: &started},
	}
}

// privateStore is a Store with the default prefix and shard count on a redis-server of the
// benchmark's own, so that nothing else changes its memory.
func privateStore(b *testing.B) (*Store, *redis.Client) {
	srv := testenv.StartRedis(b)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { client.Close() })
	s, err := New(client, Config{})
	if err != nil {
		b.Fatal(err)
	}
	return s, client
}

func applyAll(b *testing.B, s *Store, events []*persona.Event, batch int) {
	ctx := context.Background()
	for len(events) > 0 {
		n := min(batch, len(events))
		results, err := s.ApplyBatch(ctx, events[:n])
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range results {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		events = events[n:]
	}
}

// BenchmarkApplyBatch applies batches of 100 events (50 inquiries created and started).
func BenchmarkApplyBatch(b *testing.B) {
	s, _ := privateStore(b)
	const batch = 100
	at := time.Now().Add(-time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		b.StopTimer()
		events := make([]*persona.Event, 0, batch)
		for len(events) < batch {
			events = append(events, pendingEvents(n, at)...)
			n++
		}
		b.StartTimer()
		applyAll(b, s, events, batch)
	}
	b.ReportMetric(float64(n*2)/b.Elapsed().Seconds(), "events/s")
}

func usedMemory(b *testing.B, c *redis.Client) int64 {
	info, err := c.InfoMap(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	v, err := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkMemoryPerInquiry inserts 20k pending inquiries (created, then started, with
// Persona-like ids, e-mail and name) and reports Redis' used_memory growth per inquiry,
// index entries and counters included (B/inquiry), along with MEMORY USAGE of the records
// hashes (B/record) and of the expiry index (B/index-entry) per inquiry. Run with
// -benchtime=1x.
func BenchmarkMemoryPerInquiry(b *testing.B) {
	const count = 20000
	s, c := privateStore(b)
	ctx := context.Background()
	var events []*persona.Event
	at := time.Now().Add(-time.Hour)
	for n := range count {
		events = append(events, pendingEvents(n, at)...)
	}
	var perInquiry, perRecord, perEntry float64
	for b.Loop() {
		if err := c.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		applyAll(b, s, events[:2], 2) // the script cache and counters exist before measuring
		if err := c.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		before := usedMemory(b, c)
		applyAll(b, s, events, 200)
		after := usedMemory(b, c)
		perInquiry = float64(after-before) / count

		var sum int64
		for shard := range s.cfg.Shards {
			v, err := c.MemoryUsage(ctx, s.keys.records(shard), 0).Result()
			if err != nil {
				b.Fatal(err)
			}
			sum += v
		}
		perRecord = float64(sum) / count
		sum = 0
		for shard := range s.cfg.Shards {
			v, err := c.MemoryUsage(ctx, s.keys.expiry(shard), 0).Result()
			if err != nil {
				b.Fatal(err)
			}
			sum += v
		}
		perEntry = float64(sum) / count
	}
	if n, err := s.CountExpiring(ctx, 48*time.Hour); err != nil || n != count {
		b.Fatalf("CountExpiring = %d, %v; want %d", n, err, count)
	}
	b.ReportMetric(perInquiry, "B/inquiry")
	b.ReportMetric(perRecord, "B/record")
	b.ReportMetric(perEntry, "B/index-entry")
}
