package bench

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what a load loop measured.
type loadResult struct {
	OK, Failed int
	// Skipped counts requests of an open loop that were never sent because MaxInFlight
	// requests were already waiting: the offered rate fell short by that much.
	Skipped int
	Elapsed time.Duration
	// Offered is the time over which the open loop dispatched its requests.
	Offered time.Duration
	// Latencies are sorted; an open loop measures each from the request's scheduled time,
	// so a late dispatch counts against the system (no coordinated omission).
	Latencies []time.Duration
	FirstErr  error
	// CPU is the process's CPU time over the loop (processCPU), where the caller measured it.
	CPU time.Duration
	// LoadgenCPU is the CPU time of a load generator that ran in a process of its own (so
	// not in CPU); zero when it ran in this one.
	LoadgenCPU time.Duration
	// Syscalls is the process's read and write system calls over the loop
	// (processSyscalls), where the caller counted them; -1 when unknown.
	Syscalls int64
	// LoadgenSyscalls is those of a load generator in a process of its own; -1 when
	// unknown or when it ran in this one.
	LoadgenSyscalls int64
}

// CPUPerOK is the CPU time per completed request; zero when nothing completed.
func (r loadResult) CPUPerOK() time.Duration {
	if r.OK == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.OK)
}

// SyscallsPerOK is the read and write system calls per completed request; -1 when unknown
// or when nothing completed.
func (r loadResult) SyscallsPerOK() float64 {
	if r.OK == 0 || r.Syscalls < 0 {
		return -1
	}
	return float64(r.Syscalls) / float64(r.OK)
}

// Rate is the completed requests per second.
func (r loadResult) Rate() float64 { return float64(r.OK) / r.Elapsed.Seconds() }

// closedLoop runs do(i) for i = 0, 1, ... on concurrency goroutines, each starting its next
// request when the last one answered, until n requests were started or maxTime passed (both
// bound it), and measures completed requests per second.
func closedLoop(ctx context.Context, concurrency, n int, maxTime time.Duration, do func(ctx context.Context, i int) error) loadResult {
	ctx, cancel := context.WithTimeout(ctx, maxTime+30*time.Second) // also bound requests in flight
	defer cancel()
	var next atomic.Int64
	var ok, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	lats := make([][]time.Duration, concurrency)
	start := time.Now()
	deadline := start.Add(maxTime)
	var wg sync.WaitGroup
	for g := range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := do(ctx, i); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				lats[g] = append(lats[g], time.Since(t0))
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	res := loadResult{OK: int(ok.Load()), Failed: int(failed.Load()), Elapsed: time.Since(start), FirstErr: firstErr}
	res.Offered = res.Elapsed
	res.Latencies = slices.Concat(lats...)
	slices.Sort(res.Latencies)
	return res
}

// openLoop sends requests at a fixed rate whatever the answers, for duration (and at most
// rate×duration requests): request i is due at start + i/rate and runs on its own
// goroutine. Requests are dispatched by a ticker in small groups, so a busy machine shows up
// as latency measured from the due time, not as a lower rate. When maxInFlight requests are
// already waiting, a due request is skipped (counted in Skipped) rather than queued without
// bound. It waits at most 30 s for the last answers.
func openLoop(ctx context.Context, perSecond float64, duration time.Duration, maxInFlight int, do func(ctx context.Context, i int) error) loadResult {
	total := int(perSecond * duration.Seconds())
	interval := time.Duration(float64(time.Second) / perSecond)
	reqCtx, cancel := context.WithTimeout(ctx, duration+30*time.Second)
	defer cancel()

	var (
		mu       sync.Mutex
		lats     = make([]time.Duration, 0, total)
		ok, fail int
		firstErr error
		inFlight atomic.Int64
		wg       sync.WaitGroup
		skipped  int
	)
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	i := 0
dispatch:
	for i < total {
		now := time.Now()
		for i < total {
			due := start.Add(time.Duration(i) * interval)
			if due.After(now) {
				break
			}
			if inFlight.Load() >= int64(maxInFlight) {
				skipped++
				i++
				continue
			}
			inFlight.Add(1)
			wg.Add(1)
			go func(i int, due time.Time) {
				defer wg.Done()
				defer inFlight.Add(-1)
				err := do(reqCtx, i)
				lat := time.Since(due)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					fail++
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				ok++
				lats = append(lats, lat)
			}(i, due)
			i++
		}
		select {
		case <-ctx.Done():
			break dispatch
		case <-tick.C:
		}
	}
	offered := time.Since(start)
	wg.Wait()
	slices.Sort(lats)
	return loadResult{OK: ok, Failed: fail, Skipped: skipped + (total - i), Elapsed: time.Since(start),
		Offered: offered, Latencies: lats, FirstErr: firstErr}
}
