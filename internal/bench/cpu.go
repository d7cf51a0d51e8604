package bench

import (
	"context"
	"runtime/pprof"
	"syscall"
	"time"
)

// processCPU returns the CPU time (user plus system) this process has used so far, from
// getrusage(RUSAGE_SELF); zero where the call fails. With the embedded NATS server it covers
// the load generator, the system under test and NATS alike.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// withRole runs f with the pprof label role=name (and the labels already in ctx), so that
// goroutines f starts, and the goroutines those start, carry it: a CPU profile of a run can
// then be split by role with `go tool pprof -tagfocus role=receiver` (or -tags). The embedded
// NATS server's goroutines are created by the server and carry no role.
func withRole(ctx context.Context, name string, f func(ctx context.Context)) {
	pprof.Do(ctx, pprof.Labels("role", name), f)
}
