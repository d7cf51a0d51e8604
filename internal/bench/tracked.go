package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/notify"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// TrackedOptions size the sweep and memory scenarios, which share one growing set of tracked
// pending inquiries: it is filled level by level, and each level is measured before the
// next is added.
type TrackedOptions struct {
	// Levels are the tracked-inquiry counts measured, ascending (10k, 100k, 1M).
	Levels []int
	// Due is the number of inquiries with a reminder due at each level; each level adds
	// this many fresh due ones (the previous level's were swept).
	Due int
	// Reps is the number of ClaimDue calls timed per level.
	Reps int
	// EventsPerInquiry is 2 (inquiry.created, then inquiry.started: what a real pending
	// inquiry went through) or 1 (inquiry.started alone, with the full payload: faster to
	// fill, one remembered event id less per record).
	EventsPerInquiry int
	// Pipelines in flight and Batch (EVALSHAs per pipeline) of the fill.
	Pipelines, Batch int
	// MemoryTargetFrom: levels of at least this many inquiries are checked against the
	// memory target.
	MemoryTargetFrom int
	// MemoryUsageUpTo: up to this many tracked inquiries, the memory scenario also sums
	// MEMORY USAGE over every key of the run (a cross-check that other tenants of the Redis
	// cannot disturb).
	MemoryUsageUpTo int
	// Sweep and Memory choose the tables produced.
	Sweep, Memory bool
}

// trackedLevel is what one level measured.
type trackedLevel struct {
	tracked    int
	fill       time.Duration
	usedBytes  int64 // used_memory growth since before the fill
	keys       int64 // DBSIZE growth
	usageBytes int64 // sum of MEMORY USAGE over the run's keys; 0 when not measured
	claims     []time.Duration
	// refClaims, at the largest level only, are ClaimDue calls on a second store of
	// refTracked inquiries (the first level's count), alternated with claims.
	refClaims  []time.Duration
	refTracked int
	sweep      time.Duration
	swept      int
}

// warmUps is the number of ClaimDue calls made at each level before the timed ones: the
// first calls after a fill pay for connections and caches, not for the due work.
const warmUps = 2

// nopChannel is a reminder channel that delivers nothing, so a sweep measures the
// notifier's own work: claim, decide, settle.
type nopChannel struct{}

func (nopChannel) Name() string                                         { return "bench" }
func (nopChannel) Send(context.Context, *notify.Reminder) (bool, error) { return false, nil }

// fillTracked applies the lifecycle events of inquiries [from, to) straight to Redis with
// pipelined apply scripts; inquiries [from, from+due) expire in 30 minutes (their reminders
// are due), the others in about a day.
func (e *env) fillTracked(ctx context.Context, store *state.Store, o TrackedOptions, base time.Time, from, to, due int) error {
	script, _, _, err := store.RawApply((&generatedEvent{ID: "evt_x", Name: "inquiry.started", InquiryID: "inq_x",
		CreatedAt: base, Status: persona.StatusPending, facts: newFacts(0, 0, base, base)}).event())
	if err != nil {
		return err
	}
	if err := script.Load(ctx, e.rdb).Err(); err != nil {
		return fmt.Errorf("load apply script: %w", err)
	}
	chunk := max(o.Batch/o.EventsPerInquiry, 1)
	var next atomic.Int64
	next.Store(int64(from))
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range o.Pipelines {
		wg.Go(func() {
			cmds := make([]*redis.Cmd, 0, chunk*2)
			for ctx.Err() == nil {
				lo := int(next.Add(int64(chunk)) - int64(chunk))
				if lo >= to {
					return
				}
				hi := min(lo+chunk, to)
				pipe := e.rdb.Pipeline()
				cmds = cmds[:0]
				for n := lo; n < hi; n++ {
					x := base.Add(24*time.Hour - time.Duration(n%3600)*time.Second)
					if n < from+due {
						x = base.Add(30 * time.Minute)
					}
					evs := newFacts(e.seed^0x7EAC, n, base, x).lifecycle(e.seed^0x7EAC, false)
					for _, g := range evs[2-o.EventsPerInquiry:] {
						_, keys, args, err := store.RawApply(g.event())
						if err != nil {
							errOnce.Do(func() { firstErr = err })
							return
						}
						cmds = append(cmds, script.EvalSha(ctx, pipe, keys, args...))
					}
				}
				_, err := pipe.Exec(ctx)
				for _, c := range cmds {
					if err == nil {
						err = c.Err()
					}
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("fill tracked inquiries: %w", err) })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// usedMemory returns INFO memory's used_memory, once Redis has finished freeing what was
// unlinked before (lazyfree_pending_objects is 0, or 10 s passed).
func usedMemory(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	var sum atomic.Int64
	err := forEachNode(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		deadline := time.Now().Add(10 * time.Second)
		for {
			info, err := node.InfoMap(ctx, "memory").Result()
			if err != nil {
				return fmt.Errorf("read redis memory: %w", err)
			}
			m := info["Memory"]
			if m["lazyfree_pending_objects"] == "0" || m["lazyfree_pending_objects"] == "" || time.Now().After(deadline) {
				n, err := strconv.ParseInt(m["used_memory"], 10, 64)
				sum.Add(n)
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	return sum.Load(), err
}

// memoryUsage sums MEMORY USAGE (all samples) over every key starting with prefix, on every
// primary of a cluster.
func memoryUsage(ctx context.Context, rdb redis.UniversalClient, prefix string) (int64, error) {
	var sum atomic.Int64
	err := forEachNode(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, prefix+"*", 5000).Iterator()
		keys := make([]string, 0, 1000)
		flush := func() error {
			pipe := node.Pipeline()
			cmds := make([]*redis.IntCmd, len(keys))
			for i, k := range keys {
				cmds[i] = pipe.MemoryUsage(ctx, k, 0)
			}
			if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
				return err
			}
			for _, c := range cmds {
				sum.Add(c.Val())
			}
			keys = keys[:0]
			return nil
		}
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
			if len(keys) == cap(keys) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if len(keys) > 0 {
			return flush()
		}
		return nil
	})
	return sum.Load(), err
}

// runTracked fills the tracked set level by level and measures, at each level, Redis memory
// per inquiry (memory) and the time to find and claim the due reminders (sweep).
func (e *env) runTracked(ctx context.Context, o TrackedOptions) ([]*Table, error) {
	prefix := e.redisPrefix("tracked")
	defer e.cleanPrefix(prefix)
	base := time.Now().UTC().Truncate(time.Millisecond)
	// claimAt (below) moves on past every lease; leases run on Redis's clock, moved on with it.
	var leaseShift atomic.Int64
	store, err := state.New(e.rdb, state.Config{Prefix: prefix,
		LeaseClockOffset: func() time.Duration { return time.Duration(leaseShift.Load()) }})
	if err != nil {
		return nil, err
	}
	secret := make([]byte, link.MinSecretLen)
	rand.Read(secret)
	// claimAt is the clock of the claims: it moves past every lease, so the same due
	// inquiries are due again at the next ClaimDue.
	claimAt := base
	const lease = time.Millisecond

	// Load the scripts and let Redis settle before the memory baseline.
	if err := e.fillTracked(ctx, store, TrackedOptions{EventsPerInquiry: 1, Pipelines: 1, Batch: 1}, base, 0, 0, 0); err != nil {
		return nil, err
	}
	if _, err := store.ClaimDue(ctx, claimAt, lease, 1); err != nil {
		return nil, err
	}
	startMem, err := usedMemory(ctx, e.rdb)
	if err != nil {
		return nil, err
	}
	startKeys, err := e.rdb.DBSize(ctx).Result()
	if err != nil {
		return nil, err
	}

	var levels []trackedLevel
	have := 0
	for _, level := range o.Levels {
		if level <= have {
			continue
		}
		lv := trackedLevel{tracked: level}
		e.log("tracked: filling %d → %d inquiries (%d due)", have, level, o.Due)
		t0 := time.Now()
		if err := e.fillTracked(ctx, store, o, base, have, level, o.Due); err != nil {
			return nil, err
		}
		lv.fill = time.Since(t0)
		have = level
		if lv.usedBytes, err = usedMemory(ctx, e.rdb); err != nil {
			return nil, err
		}
		lv.usedBytes -= startMem
		keys, err := e.rdb.DBSize(ctx).Result()
		if err != nil {
			return nil, err
		}
		lv.keys = keys - startKeys
		if o.Memory && level <= o.MemoryUsageUpTo {
			if lv.usageBytes, err = memoryUsage(ctx, e.rdb, prefix); err != nil {
				return nil, err
			}
		}
		if o.Sweep && len(levels) > 0 && level == slices.Max(o.Levels) {
			// The target compares this level with the first: measure both in the same
			// minutes, alternating, against a second store holding the first level's
			// inquiries (the first level's own figure was taken minutes earlier, before
			// this level's fill, and a shared machine and Redis drift more than that).
			lo := levels[0].tracked
			e.log("tracked: filling a reference set of %d inquiries (%d due) beside the %d", lo, o.Due, level)
			refPrefix := e.redisPrefix("tracked-ref")
			defer e.cleanPrefix(refPrefix)
			ref, err := state.New(e.rdb, state.Config{Prefix: refPrefix,
				LeaseClockOffset: func() time.Duration { return time.Duration(leaseShift.Load()) }})
			if err != nil {
				return nil, err
			}
			if err := e.fillTracked(ctx, ref, o, base, 0, lo, o.Due); err != nil {
				return nil, err
			}
			e.log("tracked: %d ClaimDue calls at %d tracked alternating with %d at %d", o.Reps, level, o.Reps, lo)
			for rep := range warmUps + o.Reps {
				claimAt = claimAt.Add(2 * lease)
				leaseShift.Store(int64(claimAt.Sub(base)))
				order := []*state.Store{ref, store}
				if rep%2 == 1 {
					order = []*state.Store{store, ref}
				}
				for _, st := range order {
					t0 := time.Now()
					claims, err := st.ClaimDue(ctx, claimAt, lease, o.Due)
					d := time.Since(t0)
					if err != nil {
						return nil, err
					}
					n := level
					if st == ref {
						n = lo
					}
					if len(claims) != o.Due {
						return nil, fmt.Errorf("claim due at %d tracked: claimed %d, want %d", n, len(claims), o.Due)
					}
					if rep < warmUps {
						continue
					}
					if st == ref {
						lv.refClaims = append(lv.refClaims, d)
					} else {
						lv.claims = append(lv.claims, d)
					}
				}
			}
			slices.Sort(lv.claims)
			slices.Sort(lv.refClaims)
			lv.refTracked = lo
		} else if o.Sweep {
			e.log("tracked: %d ClaimDue calls at %d tracked", o.Reps, level)
			for rep := range warmUps + o.Reps {
				claimAt = claimAt.Add(2 * lease)
				leaseShift.Store(int64(claimAt.Sub(base)))
				t0 := time.Now()
				claims, err := store.ClaimDue(ctx, claimAt, lease, o.Due)
				if rep >= warmUps {
					lv.claims = append(lv.claims, time.Since(t0))
				}
				if err != nil {
					return nil, err
				}
				if len(claims) != o.Due {
					return nil, fmt.Errorf("claim due at %d tracked: claimed %d, want %d", level, len(claims), o.Due)
				}
			}
			slices.Sort(lv.claims)
		}
		// A notifier sweep settles the due reminders, so the next level's due ones are new.
		sweepNow := claimAt.Add(time.Second)
		sched, err := notify.NewScheduler(notify.SchedulerOptions{
			Store:       store,
			Channels:    []notify.Channel{nopChannel{}},
			LinkMode:    notify.LinkRedirect,
			Redirect:    &link.Signer{Secret: secret, PublicURL: "http://127.0.0.1:9"},
			ClaimLimit:  o.Due,
			Concurrency: 64,
			Now:         func() time.Time { return sweepNow },
		})
		if err != nil {
			return nil, err
		}
		t0 = time.Now()
		lv.swept, err = sched.Sweep(ctx)
		lv.sweep = time.Since(t0)
		if err != nil {
			return nil, err
		}
		claimAt = sweepNow
		leaseShift.Store(int64(claimAt.Sub(base)))
		levels = append(levels, lv)
	}
	if len(levels) == 0 {
		return nil, fmt.Errorf("no tracked levels")
	}

	var tables []*Table
	if o.Sweep {
		tables = append(tables, sweepTable(o, levels))
	}
	if o.Memory {
		tables = append(tables, memoryTable(o, levels))
	}
	return tables, nil
}

func sweepTable(o TrackedOptions, levels []trackedLevel) *Table {
	t := newTable("sweep", fmt.Sprintf("find and claim %d due reminders (ClaimDue) and a whole notifier sweep", o.Due),
		"tracked", "due", "ClaimDue p50", "min", "p90", "per claim", "Sweep (claim+settle)", "swept")
	for _, lv := range levels {
		p50 := percentile(lv.claims, 50)
		t.row(itoa(lv.tracked), itoa(o.Due), ms(p50), ms(percentile(lv.claims, 0)), ms(percentile(lv.claims, 90)),
			strconv.FormatFloat(float64(p50.Microseconds())/float64(o.Due), 'f', 1, 64)+" µs", ms(lv.sweep), itoa(lv.swept))
		k := strconv.Itoa(lv.tracked)
		t.Metrics["claimdue_p50_ms_"+k] = msf(p50)
		t.Metrics["sweep_ms_"+k] = msf(lv.sweep)
	}
	lo, hi := levels[0], levels[len(levels)-1]
	loClaims, how := lo.claims, "measured at each level as it was reached"
	if len(hi.refClaims) > 0 {
		loClaims, how = hi.refClaims, fmt.Sprintf("alternated in the same minutes with a reference set of %d; sequential, as in the rows: %.2f ×",
			hi.refTracked, float64(percentile(hi.claims, 50))/float64(percentile(lo.claims, 50)))
		p50 := percentile(hi.refClaims, 50)
		t.row(itoa(hi.refTracked)+" (ref)", itoa(o.Due), ms(p50), ms(percentile(hi.refClaims, 0)), ms(percentile(hi.refClaims, 90)),
			strconv.FormatFloat(float64(p50.Microseconds())/float64(o.Due), 'f', 1, 64)+" µs", "-", "-")
		t.Metrics["claimdue_p50_ms_ref_"+strconv.Itoa(hi.refTracked)] = msf(p50)
		t.Metrics["ratio_sequential"] = float64(percentile(hi.claims, 50)) / float64(percentile(lo.claims, 50))
	}
	r := float64(percentile(hi.claims, 50)) / float64(percentile(loClaims, 50))
	t.Metrics["ratio"] = r
	t.target(fmt.Sprintf("ClaimDue at %d vs %d tracked", hi.tracked, lo.tracked), "≤ 1.5 ×", r, r <= 1.5,
		fmt.Sprintf("%.2f × (%s vs %s, medians of %d calls, %s)", r, ms(percentile(hi.claims, 50)), ms(percentile(loClaims, 50)), o.Reps, how))
	if len(hi.refClaims) > 0 {
		t.note("the largest level's ClaimDue calls alternate with calls on a second store holding %d inquiries (%d due), filled just before: the target's ratio compares those, taken in the same minutes; the \"(ref)\" row is that store, the other rows were measured as each level was reached", hi.refTracked, o.Due)
	}
	t.note("ClaimDue claims all %d due in one call (limit per shard %d, 16 shards, one pipelined round trip); each call's lease runs out before the next, so the same %d are due again; %d untimed calls first at each level",
		o.Due, o.Due, o.Due, warmUps)
	t.note("Sweep: notify.Scheduler.Sweep in redirect link mode with a channel that delivers nothing: claim, decide, CompleteReminder per inquiry (8 at a time); it runs once per level, after the memory reading")
	return t
}

func memoryTable(o TrackedOptions, levels []trackedLevel) *Table {
	t := newTable("memory", "Redis bytes per tracked pending inquiry (record, expiry index, reminder schedule, counters)",
		"tracked", "fill time", "fill rate", "used_memory Δ", "B/inquiry", "keys Δ", "MEMORY USAGE B/inquiry")
	for _, lv := range levels {
		per := float64(lv.usedBytes) / float64(lv.tracked)
		usage := "-"
		if lv.usageBytes > 0 {
			usage = strconv.FormatFloat(float64(lv.usageBytes)/float64(lv.tracked), 'f', 0, 64)
		}
		t.row(itoa(lv.tracked), secs(lv.fill), rate(float64(lv.tracked*o.EventsPerInquiry)/lv.fill.Seconds())+" events",
			strconv.FormatFloat(float64(lv.usedBytes)/(1<<20), 'f', 1, 64)+" MiB",
			strconv.FormatFloat(per, 'f', 0, 64), strconv.FormatInt(lv.keys, 10), usage)
		k := strconv.Itoa(lv.tracked)
		t.Metrics["bytes_per_inquiry_"+k] = per
		if lv.usageBytes > 0 {
			t.Metrics["memory_usage_bytes_per_inquiry_"+k] = float64(lv.usageBytes) / float64(lv.tracked)
		}
		if lv.tracked >= o.MemoryTargetFrom {
			t.target(fmt.Sprintf("memory at %d", lv.tracked), "≤ 350 B per inquiry", per, per <= 350,
				strconv.FormatFloat(per, 'f', 0, 64)+" B per inquiry")
		}
	}
	events := "inquiry.created then inquiry.started"
	if o.EventsPerInquiry == 1 {
		events = "inquiry.started alone"
	}
	t.note("each inquiry: %s applied by the service's apply script (realistic ids, reference, template, account, e-mail, first name, expiry); the used_memory Δ is since before the first fill, so it includes every index and counter", events)
	t.note("used_memory is the whole Redis: other tenants' writes during the fill show up in it (keys Δ counts theirs too); MEMORY USAGE sums only this run's keys but leaves out Redis' per-key dictionary overhead")
	return t
}
