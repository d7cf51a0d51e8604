// Package bench is resumer's load generator and benchmark harness (issue 8, run as
// `resumer bench`; docs/BENCHMARKS.md has the figures and the commands).
//
// The machine it runs on is shared and noisy, so every speed target is a ratio against a raw
// baseline measured in the same run, with the same bodies, and the two are run alternately:
//
//	ingest   signed webhooks through the receiver on a loopback HTTP listener to PubAck, vs
//	         the same bodies published straight to JetStream at the same concurrency; then
//	         p50/p99 latency at a fixed offered rate (5k/s)
//	apply    events from a pre-filled stream through the worker into Redis, vs the same
//	         apply scripts sent straight to Redis, pipelined (state.Store.RawApply)
//	e2e      a burst of webhooks through receiver, stream and worker: time until every
//	         event is applied, and proof that none was lost
//	sweep    ClaimDue (and a whole notifier sweep) finding and claiming 1k due reminders
//	         among 10k, 100k and 1M tracked inquiries
//	memory   Redis used_memory growth per tracked pending inquiry at the same levels
//	persona  resume calls through 3 clients sharing the Redis limiter against the Persona
//	         simulator's 300/min: 429s and achieved rate
//	backlog  2,000 reminders due at once drained by 3 notify replicas through the shared
//	         Persona budget: reminders/min vs the budget, lease expiries, deadline order
//
// Events are generated with Persona's real envelope and a full inquiry payload (2 to 4 KB),
// with unique ids, and each webhook is signed when it is sent. Every load loop is bounded in
// count and in time, and only loopback addresses are used. A run names its streams
// BENCH_<RUN>_... and its Redis keys bench-<run>-..., and deletes them when it ends.
package bench
