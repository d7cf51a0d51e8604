package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/webhook"
)

// IngestOptions size the ingest scenario.
type IngestOptions struct {
	// Concurrency is the number of requests (or baseline publishes) in flight in the
	// throughput phases.
	Concurrency int
	// Requests bounds each throughput phase's count, Duration its time; the corpus holds
	// Requests distinct events.
	Requests int
	Duration time.Duration
	// Rounds of baseline and receiver phases, alternating; the ratio is of the medians.
	Rounds int
	// Rate is the offered rate of the latency phase; it runs LatencyWindows windows of
	// LatencyDuration, alternating with the baseline at the same rate.
	Rate            float64
	LatencyDuration time.Duration
	LatencyWindows  int
	// MaxInFlight bounds the latency phase's waiting requests.
	MaxInFlight int
}

// receiverServer is a webhook receiver on a loopback HTTP listener, publishing to one stream
// over its own NATS connection, as the webhook role runs it.
type receiverServer struct {
	url  string
	srv  *http.Server
	nc   *nats.Conn
	done chan struct{}
}

func startReceiver(natsURL, stream string, secret []byte) (*receiverServer, error) {
	// As the webhook role connects (cmd/resumer): abandoned PubAck futures time out.
	nc, js, err := connectNATS(natsURL, "resumer-bench-receiver", jetstream.WithPublishAsyncTimeout(webhook.DefaultPublishTimeout))
	if err != nil {
		return nil, err
	}
	rc, err := webhook.New(webhook.Options{
		Secrets:    [][]byte{secret},
		Publisher:  js,
		Stream:     stream,
		Registerer: prometheus.NewRegistry(), // the metrics cost what they cost in production
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	rc.Register(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	r := &receiverServer{
		url:  "http://" + ln.Addr().String() + webhook.Path,
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		nc:   nc,
		done: make(chan struct{}),
	}
	go func() {
		defer close(r.done)
		r.srv.Serve(ln)
	}()
	return r, nil
}

func (r *receiverServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.srv.Shutdown(ctx)
	<-r.done
	r.nc.Close()
}

// publishRaw publishes one event straight to JetStream, as the receiver would after its
// checks, and waits for the PubAck.
func publishRaw(ctx context.Context, js jetstream.JetStream, stream string, ev *generatedEvent) error {
	ctx, cancel := context.WithTimeout(ctx, webhook.DefaultPublishTimeout)
	defer cancel()
	ack, err := js.PublishMsg(ctx, ev.message(time.Now()), jetstream.WithExpectStream(stream))
	if err != nil {
		return err
	}
	if ack.Duplicate {
		return errors.New("duplicate pub ack")
	}
	return nil
}

// ingestPhase runs one phase on a fresh stream: "baseline" publishes straight to JetStream,
// "receiver" POSTs signed webhooks to a receiver. rate > 0 makes it an open loop at that rate.
func (e *env) ingestPhase(ctx context.Context, o IngestOptions, kind string, round int, events []generatedEvent, perSecond float64) (loadResult, error) {
	stream := e.streamName("ingest_" + kind + "_" + strconv.Itoa(round))
	if perSecond > 0 {
		stream += "_RATE"
	}
	if err := e.ensureStream(ctx, stream); err != nil {
		return loadResult{}, err
	}
	defer e.deleteStream(stream)

	// Goroutines started below carry pprof labels: role=raw-publisher (the baseline's client),
	// role=receiver (HTTP server, handler and its NATS connection), role=loadgen (the HTTP
	// client posting webhooks); the embedded NATS server's carry none.
	var do func(ctx context.Context, i int) error
	var setupErr error
	switch kind {
	case "baseline":
		if perSecond == 0 && len(e.loadgen) > 0 {
			break // published from the load generator process
		}
		var nc *nats.Conn
		var js jetstream.JetStream
		withRole(ctx, "raw-publisher", func(context.Context) {
			nc, js, setupErr = connectNATS(e.natsURL, "resumer-bench-publisher")
		})
		if setupErr != nil {
			return loadResult{}, setupErr
		}
		defer nc.Close()
		do = func(ctx context.Context, i int) error {
			return publishRaw(ctx, js, stream, &events[i%len(events)])
		}
	case "receiver":
		var rs *receiverServer
		withRole(ctx, "receiver", func(context.Context) {
			rs, setupErr = startReceiver(e.natsURL, stream, e.secret)
		})
		if setupErr != nil {
			return loadResult{}, setupErr
		}
		defer rs.close()
		e.receiverURL = rs.url
		poster, err := newWebhookPoster(rs.url, e.secret)
		if err != nil {
			return loadResult{}, err
		}
		defer poster.close()
		// Persona signs its webhooks: the signatures are made before the phase (well within
		// the receiver's 5-minute tolerance), so the CPU measured is not the signer's.
		n := min(o.Requests, len(events))
		if perSecond > 0 {
			n = min(int(perSecond*o.LatencyDuration.Seconds())+1, len(events))
		}
		signed := make([]string, n)
		now := time.Now()
		for i := range signed {
			signed[i] = webhook.Sign(events[i].Body, e.secret, now)
		}
		do = func(ctx context.Context, i int) error {
			return poster.postSigned(ctx, events[i%n].Body, signed[i%n])
		}
	}
	if perSecond == 0 && len(e.loadgen) > 0 {
		// The load in a process of its own, on both sides, so that both get the same share
		// of a busy machine: this process's CPU time is the receiver's and NATS's (receiver)
		// or NATS's (baseline), and the raw publisher's CPU is added from the child's count,
		// since the raw publish is what the baseline measures.
		job := loadgenJob{URL: e.receiverURL, Secret: e.secret, Corpus: e.corpusPath,
			Concurrency: o.Concurrency, N: min(o.Requests, len(events)), Duration: o.Duration}
		if kind == "baseline" {
			job.Publish, job.NATSURL, job.Stream = true, e.natsURL, stream
		}
		cpu0, sys0 := processCPU(), processSyscalls()
		res, err := runLoadgen(ctx, e.loadgen, job)
		res.CPU, res.Syscalls = processCPU()-cpu0, syscallsSince(sys0)
		if kind == "baseline" {
			res.CPU += res.LoadgenCPU
			if res.Syscalls >= 0 && res.LoadgenSyscalls >= 0 {
				res.Syscalls += res.LoadgenSyscalls
			} else {
				res.Syscalls = -1
			}
		}
		return res, err
	}
	role := "loadgen"
	if kind == "baseline" {
		role = "raw-publisher"
	}
	var res loadResult
	withRole(ctx, role, func(ctx context.Context) {
		cpu0, sys0 := processCPU(), processSyscalls()
		if perSecond > 0 {
			res = openLoop(ctx, perSecond, o.LatencyDuration, o.MaxInFlight, do)
		} else {
			res = closedLoop(ctx, o.Concurrency, min(o.Requests, len(events)), o.Duration, do)
		}
		res.CPU, res.Syscalls = processCPU()-cpu0, syscallsSince(sys0)
	})
	return res, nil
}

// runIngest measures signed webhooks per second through the receiver to PubAck against the
// same bodies published straight to JetStream at the same concurrency, then the latency
// at a fixed offered rate. Baseline and receiver phases alternate, so that both see the same
// share of a noisy machine; each ratio is taken within a round.
func (e *env) runIngest(ctx context.Context, o IngestOptions) (*Table, error) {
	t := newTable("ingest", "signed webhooks through the receiver to PubAck vs. raw JetStream publish",
		"phase", "round", "requests", "errors", "time", "rate", "CPU/req", "syscalls/req", "p50", "p99", "max")
	inquiries := (o.Requests + 1) / 2
	if o.Rate > 0 {
		inquiries = max(inquiries, (int(o.Rate*o.LatencyDuration.Seconds())+1)/2)
	}
	e.log("ingest: generating %d event bodies", 2*inquiries)
	events := corpus(e.seed, inquiries, time.Now(), true)
	var size int
	for _, ev := range events {
		size += len(ev.Body)
	}
	t.Metrics["body_bytes_avg"] = float64(size) / float64(len(events))
	t.note("%d distinct events, %d B per body on average (%d to %d B), each request signed when sent; concurrency %d; each phase on a fresh stream",
		len(events), size/len(events), minBody(events), maxBody(events), o.Concurrency)

	if len(e.loadgen) > 0 {
		dir, err := os.MkdirTemp("", "resumer-bench-loadgen-")
		if err != nil {
			return t, err
		}
		defer removeAll(dir, e.log)
		if e.corpusPath, err = writeCorpus(dir, events); err != nil {
			return t, err
		}
	}
	var base, recv, ratios, baseCPU, recvCPU, cpuRatios, loadgenCPU []float64
	var sys [2][]float64 // syscalls per request: baseline, receiver
	for round := 1; round <= o.Rounds; round++ {
		var rates, cpus [2]float64
		for k, kind := range []string{"baseline", "receiver"} {
			e.log("ingest: round %d, %s", round, kind)
			res, err := e.ingestPhase(ctx, o, kind, round, events, 0)
			if err != nil {
				return t, fmt.Errorf("ingest %s: %w", kind, err)
			}
			if res.OK == 0 {
				return t, fmt.Errorf("ingest %s: nothing succeeded: %v", kind, res.FirstErr)
			}
			if res.FirstErr != nil {
				t.note("round %d %s: %d errors, first: %v", round, kind, res.Failed, res.FirstErr)
			}
			t.row(kind, itoa(round), itoa(res.OK), itoa(res.Failed), secs(res.Elapsed), rate(res.Rate()), us(res.CPUPerOK()), perReq(res.SyscallsPerOK()),
				ms(percentile(res.Latencies, 50)), ms(percentile(res.Latencies, 99)), ms(percentile(res.Latencies, 100)))
			rates[k] = res.Rate()
			if s := res.SyscallsPerOK(); s >= 0 {
				sys[k] = append(sys[k], s)
			}
			cpus[k] = float64(res.CPUPerOK()) / float64(time.Microsecond)
			if kind == "receiver" && res.LoadgenCPU > 0 && res.OK > 0 {
				loadgenCPU = append(loadgenCPU, float64(res.LoadgenCPU/time.Duration(res.OK))/float64(time.Microsecond))
			}
		}
		base, recv = append(base, rates[0]), append(recv, rates[1])
		ratios = append(ratios, rates[1]/rates[0])
		baseCPU, recvCPU = append(baseCPU, cpus[0]), append(recvCPU, cpus[1])
		cpuRatios = append(cpuRatios, cpus[1]/cpus[0])
	}
	mb, mr, rt := median(base), median(recv), median(ratios)
	t.Metrics["baseline_rate"] = mb
	t.Metrics["receiver_rate"] = mr
	t.Metrics["throughput_ratio"] = rt
	t.target("throughput", "≥ 0.50 × raw publish", rt, rt >= 0.5,
		fmt.Sprintf("%.2f × (median of %d rounds' ratios %s; median rates: receiver %s, raw %s)",
			rt, o.Rounds, ratioList(ratios), rate(mr), rate(mb)))
	mbc, mrc, rc := median(baseCPU), median(recvCPU), median(cpuRatios)
	t.Metrics["baseline_cpu_us_per_req"] = mbc
	t.Metrics["receiver_cpu_us_per_req"] = mrc
	t.Metrics["cpu_ratio"] = rc
	t.target("CPU per webhook", "≤ 2.0 × raw publish's", rc, rc <= 2,
		fmt.Sprintf("%.2f × (median of %d rounds' ratios %s; median CPU per accepted request: receiver %.1f µs, raw %.1f µs)",
			rc, o.Rounds, ratioList(cpuRatios), mrc, mbc))
	if len(sys[0]) > 0 && len(sys[1]) > 0 {
		t.Metrics["baseline_syscalls_per_req"] = median(sys[0])
		t.Metrics["receiver_syscalls_per_req"] = median(sys[1])
		t.note("syscalls/req: read and write system calls (/proc/self/io syscr + syscw: sockets and files) per request answered 200 (or PubAck), counted like CPU/req; medians: receiver %.2f, raw %.2f. On loopback most of a request's cost is such calls and the wake-ups they cause",
			median(sys[1]), median(sys[0]))
	}
	if len(loadgenCPU) > 0 {
		t.Metrics["loadgen_cpu_us_per_req"] = median(loadgenCPU)
		t.note("CPU/req is this process's CPU time (getrusage) over the phase per request answered 200 (or PubAck): with the embedded NATS it counts NATS too. Both sides' load comes from a process of its own (resumer bench _loadgen), so that both get the same share of the machine: the webhooks' HTTP client is not counted (median %.1f µs per request, signing not included: Persona signs), the raw publisher's client is (it is what the baseline measures). With --nats-url the NATS server's CPU is not counted",
			median(loadgenCPU))
	} else {
		t.note("CPU/req is the whole process's CPU time (getrusage) over the phase per request answered 200 (or PubAck): with the embedded NATS it counts NATS too, and the load generator's side on both (the raw publisher is the baseline's client; the receiver's includes the HTTP client posting the webhooks, so the receiver's figure is an upper bound); with --nats-url the NATS server's CPU is not counted")
	}
	if o.Rate <= 0 || o.LatencyWindows <= 0 {
		return t, nil
	}

	// Latency at a fixed offered rate, in windows alternating with the baseline's.
	var p99s []time.Duration
	var all []time.Duration
	var offeredMin float64 = -1
	failed, skipped := 0, 0
	for w := 1; w <= o.LatencyWindows; w++ {
		for _, kind := range []string{"baseline", "receiver"} {
			e.log("ingest: window %d, %s at %.0f/s offered for %s", w, kind, o.Rate, o.LatencyDuration)
			res, err := e.ingestPhase(ctx, o, kind, w, events, o.Rate)
			if err != nil {
				return t, fmt.Errorf("ingest %s at %.0f/s: %w", kind, o.Rate, err)
			}
			offered := float64(res.OK+res.Failed) / res.Offered.Seconds()
			p50, p99 := percentile(res.Latencies, 50), percentile(res.Latencies, 99)
			t.row(kind+" @"+strconv.FormatFloat(o.Rate, 'f', 0, 64)+"/s", itoa(w), itoa(res.OK), itoa(res.Failed+res.Skipped),
				secs(res.Elapsed), rate(offered)+" offered", us(res.CPUPerOK()), perReq(res.SyscallsPerOK()), ms(p50), ms(p99), ms(percentile(res.Latencies, 100)))
			if res.FirstErr != nil {
				t.note("%s at %.0f/s, window %d: %d errors, first: %v", kind, o.Rate, w, res.Failed, res.FirstErr)
			}
			k := kind + "_fixed_w" + itoa(w) + "_"
			t.Metrics[k+"p50_ms"], t.Metrics[k+"p99_ms"], t.Metrics[k+"offered_rate"] = msf(p50), msf(p99), offered
			if kind != "receiver" {
				continue
			}
			p99s = append(p99s, p99)
			all = append(all, res.Latencies...)
			failed += res.Failed
			skipped += res.Skipped
			if offeredMin < 0 || offered < offeredMin {
				offeredMin = offered
			}
		}
	}
	slices.Sort(all)
	slices.Sort(p99s)
	p99 := p99s[(len(p99s)-1)/2] // the median window; the lower middle one of an even count
	overall := percentile(all, 99)
	t.Metrics["receiver_fixed_p99_ms"] = msf(p99)
	t.Metrics["receiver_fixed_p99_all_ms"] = msf(overall)
	t.Metrics["receiver_fixed_p50_all_ms"] = msf(percentile(all, 50))
	t.Metrics["receiver_fixed_offered_min"] = offeredMin
	achieved := offeredMin >= 0.95*o.Rate && failed == 0
	got := fmt.Sprintf("p99 %s in the median window (windows: %s; all %d requests together: p99 %s, p50 %s); offered at least %s, %d skipped, %d failed",
		ms(p99), durList(p99s), len(all), ms(overall), ms(percentile(all, 50)), rate(offeredMin), skipped, failed)
	t.target(fmt.Sprintf("latency at %.0f/s", o.Rate), "p99 ≤ 15 ms with the full rate offered",
		msf(p99), achieved && p99 <= 15*time.Millisecond, got)
	if !achieved {
		t.note("the load generator could not offer %.0f/s on this machine in every window: at least %s (latencies are measured from each request's scheduled time)",
			o.Rate, rate(offeredMin))
	}
	t.note("fixed rate: %d windows of %s per side, alternating; a window's p99 is hit by any stall of the shared machine, so the target reads the median window and the table shows every one",
		o.LatencyWindows, o.LatencyDuration)
	t.note("the load generator posts with a minimal HTTP/1.1 client (keep-alive, one connection per request in flight) so that it takes little of the CPU the receiver is measured with")
	t.note("latency is from sending the request (closed loop) or from its scheduled time (fixed rate) to the 200 after the PubAck")
	return t, nil
}

// ratioList formats ratios as "0.41 0.45 0.39".
func ratioList(vs []float64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strings.Join(s, " ")
}

// durList formats sorted durations as "3.1 ms, 4.0 ms".
func durList(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = ms(d)
	}
	return strings.Join(s, ", ")
}

func minBody(evs []generatedEvent) int {
	m := len(evs[0].Body)
	for _, e := range evs {
		m = min(m, len(e.Body))
	}
	return m
}

func maxBody(evs []generatedEvent) int {
	m := 0
	for _, e := range evs {
		m = max(m, len(e.Body))
	}
	return m
}
