package bench

import (
	"bytes"
	"context"
	"os"
	"runtime/pprof"
	"strconv"
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

// processSyscalls returns how many read and write system calls this process has made so
// far (syscr + syscw of /proc/self/io: every read, write, send and receive, on sockets and
// files alike); -1 where that file cannot be read (not Linux). On this loopback bench most
// of a request's cost is such calls and the wake-ups they cause, so the count per request
// shows what batching saves, and varies far less between runs than the rates do.
func processSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	var n int64
	found := 0
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || (string(k) != "syscr" && string(k) != "syscw") {
			continue
		}
		c, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return -1
		}
		n += c
		found++
	}
	if found != 2 {
		return -1
	}
	return n
}

// syscallsSince returns the system calls made since start (a processSyscalls value); -1
// when either count is unknown.
func syscallsSince(start int64) int64 {
	now := processSyscalls()
	if start < 0 || now < 0 {
		return -1
	}
	return now - start
}

// withRole runs f with the pprof label role=name (and the labels already in ctx), so that
// goroutines f starts, and the goroutines those start, carry it: a CPU profile of a run can
// then be split by role with `go tool pprof -tagfocus role=receiver` (or -tags). The embedded
// NATS server's goroutines are created by the server and carry no role.
func withRole(ctx context.Context, name string, f func(ctx context.Context)) {
	pprof.Do(ctx, pprof.Labels("role", name), f)
}
