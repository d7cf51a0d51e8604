package state

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/persona"
)

// withoutFunnel is apply.lua with its funnel section cut out: the script as it was before the
// funnel, on today's record layout, for measuring what the funnel costs an apply.
func withoutFunnel(tb testing.TB) string {
	start, end := strings.Index(applyLua, "-- Funnel.\n"), strings.Index(applyLua, "-- Counters and indexes.\n")
	if start < 0 || end < start {
		tb.Fatal("apply.lua has no funnel section to cut")
	}
	return applyLua[:start] + "local fsteps\n" + applyLua[end:]
}

// BenchmarkFunnelApplyCost measures what the funnel adds to applying events, in one run on a
// redis-server of its own: rounds alternate one store between the apply script as it is and
// the same script with its funnel section cut out (withoutFunnel), each applying the same
// kind of events to fresh inquiries (created, started, then completed), 256 per pipelined
// batch, the order within a round swapped every round. It reports both mean rates and the
// median of the rounds' ratios (with/without; 1 means no cost), and the same for the time
// Redis spent in the scripts (INFO commandstats, usec per EVALSHA; the redis-server is the
// benchmark's own), which the load of a shared machine disturbs less. Run with
// -benchtime=1x.
func BenchmarkFunnelApplyCost(b *testing.B) {
	s, client := privateStore(b)
	ctx := context.Background()
	with, without := s.apply, redis.NewScript(libLua+withoutFunnel(b))
	const perRound, rounds = 3000, 9
	at := time.Now().Add(-time.Hour)
	next := 0
	events := func() []*persona.Event {
		var out []*persona.Event
		for range perRound {
			n := next
			next++
			evs := pendingEvents(n, at)
			done := *evs[1].Inquiry
			done.Status = persona.StatusCompleted
			out = append(out, evs[0], evs[1], &persona.Event{ID: personaID("evt", 9_000_000+n), Name: "inquiry.completed",
				CreatedAt: at.Add(2 * time.Minute), InquiryID: evs[0].InquiryID, PayloadType: "inquiry", Inquiry: &done})
		}
		return out
	}
	// timed applies a round's events with script and returns events/s and Redis' usec per
	// script call.
	timed := func(script *redis.Script) (float64, float64) {
		evs := events()
		s.apply = script
		if err := client.ConfigResetStat(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		applyAll(b, s, evs, 256)
		rate := float64(len(evs)) / time.Since(start).Seconds()
		info, err := client.Info(ctx, "commandstats").Result()
		if err != nil {
			b.Fatal(err)
		}
		var usec float64
		for line := range strings.Lines(info) {
			if rest, ok := strings.CutPrefix(line, "cmdstat_evalsha:"); ok {
				for field := range strings.SplitSeq(strings.TrimSpace(rest), ",") {
					if v, ok := strings.CutPrefix(field, "usec_per_call="); ok {
						usec, _ = strconv.ParseFloat(v, 64)
					}
				}
			}
		}
		return rate, usec
	}
	timed(with) // load both scripts, warm up
	timed(without)
	var ratios, usecRatios []float64
	var withRate, withoutRate, withUsec, withoutUsec float64
	for b.Loop() {
		for round := range rounds {
			var w, wo, wu, wou float64
			if round%2 == 0 {
				w, wu = timed(with)
				wo, wou = timed(without)
			} else {
				wo, wou = timed(without)
				w, wu = timed(with)
			}
			withRate += w / rounds
			withoutRate += wo / rounds
			withUsec += wu / rounds
			withoutUsec += wou / rounds
			ratios = append(ratios, w/wo)
			usecRatios = append(usecRatios, wu/wou)
		}
	}
	s.apply = with
	slices.Sort(ratios)
	slices.Sort(usecRatios)
	b.ReportMetric(withRate, "events/s-with")
	b.ReportMetric(withoutRate, "events/s-without")
	b.ReportMetric(ratios[len(ratios)/2], "with/without")
	b.ReportMetric(withUsec, "script-us-with")
	b.ReportMetric(withoutUsec, "script-us-without")
	b.ReportMetric(usecRatios[len(usecRatios)/2], "script-time-with/without")
}

// BenchmarkFunnelMemory measures the bytes a reminder's funnel attribution adds to an
// inquiry: 20k pending inquiries are claimed and settled with their 6h reminder, on one store
// with an attribution (the funnel) and on another without. It reports the difference per
// inquiry of the records hashes' exact MEMORY USAGE (B/reminded-inquiry) and of their
// packed records' lengths (record-B), and Redis' used_memory growth of the settles
// (used_memory-B, which also moves with the lease and queue bookkeeping the settles free).
// Run with -benchtime=1x.
func BenchmarkFunnelMemory(b *testing.B) {
	const count = 20000
	ctx := context.Background()
	s, c := privateStore(b)
	at := time.Now().Add(-time.Hour)
	type usage struct{ used, records, strlen int64 }
	settle := func(st *Store, attr Attribution, offset int) usage {
		var evs []*persona.Event
		for n := range count {
			evs = append(evs, pendingEvents(offset+n, at)...)
		}
		applyAll(b, st, evs, 256)
		now := at.Add(18 * time.Hour)
		var claims []Claim
		for {
			got, err := st.ClaimDue(ctx, now, time.Minute, 1000)
			if err != nil {
				b.Fatal(err)
			}
			if len(got) == 0 {
				break
			}
			claims = append(claims, got...)
		}
		if len(claims) != count {
			b.Fatalf("%d claims, want %d", len(claims), count)
		}
		before := usedMemory(b, c)
		for _, cl := range claims {
			cl.Attribution = attr
			if err := st.CompleteReminder(ctx, cl, "6h", nil); err != nil {
				b.Fatal(err)
			}
		}
		u := usage{used: usedMemory(b, c) - before}
		for shard := range st.cfg.Shards {
			v, err := c.MemoryUsage(ctx, st.keys.records(shard), 0).Result()
			if err != nil {
				b.Fatal(err)
			}
			u.records += v
		}
		for _, cl := range claims {
			n, err := c.HStrLen(ctx, st.keys.recordsOf(cl.InquiryID), handleOf(cl.InquiryID)).Result()
			if err != nil {
				b.Fatal(err)
			}
			u.strlen += n
		}
		return u
	}
	var per, rec, used float64
	for b.Loop() {
		if err := c.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		other, err := New(c, Config{Prefix: "plain"})
		if err != nil {
			b.Fatal(err)
		}
		without := settle(other, Attribution{}, 0)
		with := settle(s, Attribution{Group: GroupReminded, Stage: "6h", Channel: "email", LinkMode: "session-token"}, 1_000_000)
		per = float64(with.records-without.records) / count
		rec = float64(with.strlen-without.strlen) / count
		used = float64(with.used-without.used) / count
	}
	b.ReportMetric(per, "B/reminded-inquiry")
	b.ReportMetric(rec, "record-B")
	b.ReportMetric(used, "used_memory-B")
}
