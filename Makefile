# Developer shortcuts. The README's test command, `go test -race ./...`, is what CI runs
# (.ci/run); these targets only spell out the longer commands.

GO ?= go
# Extra flags for `make bench`, e.g. BENCH_FLAGS="--nats-url nats://127.0.0.1:4222 --json bench.json".
BENCH_FLAGS ?=

.PHONY: test bench bench-quick bench-go

# The README's test command.
test:
	$(GO) test -race ./...

# Every scenario of the load generator at full size (docs/BENCHMARKS.md), under 5 minutes on
# two cores; needs the local Redis.
bench:
	$(GO) run ./cmd/resumer bench $(BENCH_FLAGS)

# Every scenario with a few hundred events, for checking the harness itself.
bench-quick:
	$(GO) run ./cmd/resumer bench --quick $(BENCH_FLAGS)

# The testing.B benchmarks of the hot functions, with allocations.
bench-go:
	$(GO) test -run '^$$' -bench 'BenchmarkVerify|BenchmarkParseEvent' -benchmem ./webhook ./persona
	$(GO) test -run '^$$' -bench 'BenchmarkApplyBatch|BenchmarkClaimDue' -benchmem -benchtime 200x ./state
