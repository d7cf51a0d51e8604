package worker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

func TestWorkerAppliesEvents(t *testing.T) {
	e := newEnv(t)
	fixture, err := os.ReadFile("testdata/inquiry.started.json")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	e.publish(t, "inquiry.started", "evt_fixtureStarted0001", fixture)
	e.publishEvent(t, testEvent{ID: "evt_c1", Name: "inquiry.created", InquiryID: "inq_2", Status: persona.StatusCreated, At: at})
	e.publishEvent(t, testEvent{ID: "evt_s1", Name: "inquiry.started", InquiryID: "inq_2", Status: persona.StatusPending, At: at.Add(time.Minute)})
	e.publishEvent(t, testEvent{ID: "evt_x1", Name: "inquiry.frobnicated", InquiryID: "inq_2", At: at.Add(2 * time.Minute)})
	// The same event delivered twice by Persona, past the stream's dedup (another msg id).
	e.publish(t, "inquiry.created", "evt_c1-again", eventBody(t, testEvent{ID: "evt_c1", Name: "inquiry.created", InquiryID: "inq_2", Status: persona.StatusCreated, At: at}))

	opts := e.options(e.store)
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	opts.Counts = e.store
	r := start(t, opts)

	eventually(t, 10*time.Second, "inquiries applied", func() bool {
		a, b := inquiry(t, e.store, "inq_fixture0001"), inquiry(t, e.store, "inq_2")
		return a != nil && a.Status == persona.StatusPending && b != nil && b.Status == persona.StatusPending
	})
	eventually(t, 5*time.Second, "all acked", func() bool {
		info := e.consumerInfo(t, "")
		return info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream == 5
	})
	fx := inquiry(t, e.store, "inq_fixture0001")
	if fx.TemplateID != "itmpl_fixture01" || fx.ReferenceID != "user-123" ||
		!fx.ExpiresAt.Equal(time.Date(2026, 1, 6, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("fixture inquiry = %+v", fx)
	}

	m := r.w.metrics
	total := 0.0
	for _, res := range results {
		for _, ev := range slices.Concat(knownEvents, []string{eventOther}) {
			total += testutil.ToFloat64(m.events.WithLabelValues(ev, res))
		}
	}
	if total != 5 {
		t.Errorf("resumer_worker_events_total sums to %v, want 5", total)
	}
	if got := testutil.ToFloat64(m.events.WithLabelValues("inquiry.started", resultApplied)); got != 2 {
		t.Errorf("events{inquiry.started,applied} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.events.WithLabelValues("inquiry.created", resultDuplicate)); got != 1 {
		t.Errorf("events{inquiry.created,duplicate} = %v, want 1", got)
	}
	other := 0.0
	for _, res := range results {
		other += testutil.ToFloat64(m.events.WithLabelValues(eventOther, res))
	}
	if other != 1 {
		t.Errorf("unknown event counted %v times under event=other, want 1", other)
	}
	if n := testutil.CollectAndCount(m.batchSize); n != 1 {
		t.Errorf("batch size histogram: %d series", n)
	}
	if n, err := testutil.GatherAndCount(reg, "resumer_worker_apply_duration_seconds", "resumer_worker_consumer_pending",
		"resumer_worker_dead_letters_total"); err != nil || n != 5 {
		t.Errorf("gathered %d series (%v), want apply duration, pending and 3 dead-letter reasons", n, err)
	}
	eventually(t, 5*time.Second, "inquiry gauges refreshed", func() bool {
		return testutil.ToFloat64(r.w.inq.byStatus.WithLabelValues("pending")) == 2
	})
	if n, err := testutil.GatherAndCount(reg, "resumer_inquiries", "resumer_inquiries_expiring"); err != nil || n != len(statusLabels)+1+3 {
		t.Errorf("gathered %d inquiry gauge series (%v)", n, err)
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestConsumerPendingGauge holds the worker in a store call that does not return while the
// test runs: the gauge shows what the consumer has not delivered yet, and settles on the
// consumer's own count (no timing: the worker is stuck, so the count no longer moves).
func TestConsumerPendingGauge(t *testing.T) {
	e := newEnv(t)
	const n = 10
	for i := range n {
		e.publishEvent(t, testEvent{ID: fmt.Sprintf("evt_pg%d", i), Name: "inquiry.created",
			InquiryID: "inq_pg", Status: persona.StatusCreated, At: testNow})
	}
	stuck := &countingApplier{next: e.store, delay: time.Hour}
	opts := e.options(stuck)
	opts.BatchSize = 1
	opts.ShutdownGrace = 100 * time.Millisecond
	r := start(t, opts)
	// One message in the store call and at most four more taken or buffered (the pipeline's
	// next batch and the iterator's 2×BatchSize): between 5 and 9 undelivered.
	var last float64
	eventually(t, 60*time.Second, "pending gauge equal to the consumer's undelivered count", func() bool {
		last = testutil.ToFloat64(r.w.metrics.pending)
		return stuck.calls.Load() >= 1 && last == float64(e.consumerInfo(t, "").NumPending)
	})
	if last < n-5 || last >= n {
		t.Errorf("resumer_worker_consumer_pending = %v with one message in the store, want %d..%d", last, n-5, n-1)
	}
}

func TestWorkerAppliesInBatches(t *testing.T) {
	e := newEnv(t)
	const inquiries, perInquiry = 250, 4
	at := testNow.Add(-4 * time.Hour)
	names := []string{"inquiry.created", "inquiry.started", "inquiry.transitioned", "inquiry.completed"}
	statuses := []persona.Status{persona.StatusCreated, persona.StatusPending, "", persona.StatusCompleted}
	for k := range perInquiry {
		for i := range inquiries {
			e.publishEvent(t, testEvent{
				ID: fmt.Sprintf("evt_b%d_%d", i, k), Name: names[k], InquiryID: fmt.Sprintf("inq_b%d", i),
				Status: statuses[k], At: at.Add(time.Duration(k) * time.Minute),
			})
		}
	}
	counter := &countingApplier{next: e.store}
	began := time.Now()
	r := start(t, e.options(counter))
	eventually(t, 30*time.Second, "1000 events acked", func() bool {
		info := e.consumerInfo(t, "")
		return info.AckFloor.Stream == inquiries*perInquiry && info.NumAckPending == 0
	})
	elapsed := time.Since(began)
	calls := counter.calls.Load()
	t.Logf("%d events in %d ApplyBatch calls, %v (%.0f events/s)", inquiries*perInquiry, calls,
		elapsed.Round(time.Millisecond), float64(inquiries*perInquiry)/elapsed.Seconds())
	if calls > inquiries*perInquiry/20 {
		t.Errorf("%d ApplyBatch calls for %d events: not batching", calls, inquiries*perInquiry)
	}
	for i := range inquiries {
		inq := inquiry(t, e.store, fmt.Sprintf("inq_b%d", i))
		if inq == nil || inq.Status != persona.StatusCompleted {
			t.Fatalf("inq_b%d = %+v, want completed", i, inq)
		}
	}
	if got := testutil.ToFloat64(r.w.metrics.events.WithLabelValues("inquiry.completed", resultApplied)); got != inquiries {
		t.Errorf("completed applied = %v, want %d", got, inquiries)
	}
}

// TestWorkersShareConsumer runs three workers on one durable consumer over events published
// out of order and twice (PERSONA.md §2), and compares the result with one event at a time
// applied in event-time order.
func TestWorkersShareConsumer(t *testing.T) {
	e := newEnv(t)
	refClient, refPrefix := testenv.Redis(t)
	ref := newStore(t, refClient, refPrefix)

	at := testNow.Add(-3 * time.Hour)
	var events []testEvent
	final := []struct {
		name   string
		status persona.Status
	}{
		{"inquiry.completed", persona.StatusCompleted},
		{"inquiry.failed", persona.StatusFailed},
		{"inquiry.expired", persona.StatusExpired},
		{"inquiry.marked-for-review", persona.StatusNeedsReview},
	}
	const inquiries = 40
	for i := range inquiries {
		id := fmt.Sprintf("inq_m%d", i)
		t0 := at.Add(time.Duration(i) * time.Second)
		events = append(events,
			testEvent{ID: id + "_c", Name: "inquiry.created", InquiryID: id, Status: persona.StatusCreated, At: t0},
			testEvent{ID: id + "_s", Name: "inquiry.started", InquiryID: id, Status: persona.StatusPending, At: t0.Add(time.Minute)},
			testEvent{ID: id + "_t", Name: "inquiry.transitioned", InquiryID: id, Status: persona.StatusPending, At: t0.Add(2 * time.Minute)},
			testEvent{ID: id + "_q", Name: "inquiry-session.started", InquiryID: id, At: t0.Add(3 * time.Minute), Payload: "inquiry-session"},
		)
		if i%5 != 0 { // every fifth inquiry stays pending
			f := final[i%len(final)]
			events = append(events, testEvent{ID: id + "_f", Name: f.name, InquiryID: id, Status: f.status, At: t0.Add(10 * time.Minute)})
		}
		if i%2 == 0 {
			events = append(events, testEvent{ID: id + "_a", Name: "inquiry.approved", InquiryID: id, Status: persona.StatusApproved, At: t0.Add(20 * time.Minute)})
		}
	}
	// Serial reference: one event per call, in event-time order.
	for _, ev := range events {
		parsed, err := persona.ParseEvent(eventBody(t, ev))
		if err != nil {
			t.Fatal(err)
		}
		res, err := ref.ApplyBatch(context.Background(), []*persona.Event{parsed})
		if err != nil || res[0].Err != nil {
			t.Fatalf("reference apply %s: %v %v", ev.ID, err, res[0].Err)
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := append([]testEvent(nil), events...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	counters := make([]*countingApplier, 3)
	for i := range counters {
		counters[i] = &countingApplier{next: e.store}
		opts := e.options(counters[i])
		opts.BatchSize = 8 // small batches, so the workers interleave
		start(t, opts)
	}
	// Session events never create a record (PERSONA.md §4: they tell no status), so they go
	// once every inquiry's record exists, as the reference applied them.
	var sessions []testEvent
	published := 0
	publish := func(batch []testEvent) {
		for i, ev := range batch {
			e.publishEvent(t, ev)
			published++
			if i%7 == 0 { // a redelivery by Persona, past the stream's dedup window
				e.publish(t, ev.Name, ev.ID+"-retry", eventBody(t, ev))
				published++
			}
		}
		eventually(t, 30*time.Second, "all events acked", func() bool {
			info := e.consumerInfo(t, "")
			return info.AckFloor.Stream == uint64(published) && info.NumAckPending == 0
		})
	}
	var rest []testEvent
	for _, ev := range shuffled {
		if ev.Payload == "inquiry-session" {
			sessions = append(sessions, ev)
		} else {
			rest = append(rest, ev)
		}
	}
	publish(rest)
	publish(sessions)
	for i, c := range counters {
		t.Logf("worker %d: %d calls, %d events", i, c.calls.Load(), c.events.Load())
	}
	for i := range inquiries {
		id := fmt.Sprintf("inq_m%d", i)
		got, want := inquiry(t, e.store, id), inquiry(t, ref, id)
		if got == nil || want == nil {
			t.Fatalf("%s: got %+v, reference %+v", id, got, want)
		}
		got.UpdatedAt, want.UpdatedAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", id, got, want)
		}
	}
}

// TestWorkerWaitsOutRedisOutage stops Redis mid-stream: nothing may be acknowledged while it
// is down, and everything is applied once it is back.
func TestWorkerWaitsOutRedisOutage(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := redisClient(t, srv.Addr())
	prefix := testenv.Prefix(t)
	e := newEnvWithRedis(t, rdb, prefix)
	at := testNow.Add(-time.Hour)

	counter := &countingApplier{next: e.store}
	r := start(t, e.options(counter))
	e.publishEvent(t, testEvent{ID: "evt_before", Name: "inquiry.created", InquiryID: "inq_r0", Status: persona.StatusCreated, At: at})
	eventually(t, 10*time.Second, "first event acked", func() bool { return e.consumerInfo(t, "").AckFloor.Stream == 1 })

	srv.Stop()
	const during = 50
	for i := range during {
		e.publishEvent(t, testEvent{ID: fmt.Sprintf("evt_d%d", i), Name: "inquiry.started",
			InquiryID: fmt.Sprintf("inq_r%d", i), Status: persona.StatusPending, At: at.Add(time.Minute)})
	}
	eventually(t, 10*time.Second, "the worker tried the store", func() bool {
		return counter.calls.Load() >= 2
	})
	time.Sleep(time.Second) // the worker keeps retrying
	info := e.consumerInfo(t, "")
	if info.AckFloor.Stream != 1 {
		t.Fatalf("ack floor moved to %d while Redis was down", info.AckFloor.Stream)
	}
	if got := testutil.ToFloat64(r.w.metrics.events.WithLabelValues("inquiry.started", resultApplied)); got != 0 {
		t.Fatalf("%v events counted applied while Redis was down", got)
	}
	if got := testutil.ToFloat64(r.w.metrics.events.WithLabelValues("inquiry.started", resultFailed)); got == 0 {
		t.Error("no failed events counted while Redis was down")
	}
	t.Logf("while down: %d calls; consumer pending %d, ack pending %d, redelivered %d",
		counter.calls.Load(), info.NumPending, info.NumAckPending, info.NumRedelivered)

	srv.Restart(t)
	eventually(t, 20*time.Second, "events applied after Redis came back", func() bool {
		info := e.consumerInfo(t, "")
		return info.AckFloor.Stream == during+1 && info.NumAckPending == 0
	})
	for i := range during {
		id := fmt.Sprintf("inq_r%d", i)
		if inq := inquiry(t, e.store, id); inq == nil || inq.Status != persona.StatusPending {
			t.Fatalf("%s = %+v, want pending", id, inq)
		}
	}
	if n := testutil.ToFloat64(r.w.metrics.deadLetters.WithLabelValues(ReasonMaxDeliveries)); n != 0 {
		t.Errorf("%v messages dead-lettered during the outage", n)
	}
}

// TestWorkerShutdownDrains cancels a busy worker: Run returns within the grace, and every
// event the store applied is acknowledged (and nothing else is).
func TestWorkerShutdownDrains(t *testing.T) {
	e := newEnv(t)
	at := testNow.Add(-time.Hour)
	const n = 400
	for i := range n {
		e.publishEvent(t, testEvent{ID: fmt.Sprintf("evt_g%d", i), Name: "inquiry.created",
			InquiryID: fmt.Sprintf("inq_g%d", i), Status: persona.StatusCreated, At: at})
	}
	counter := &countingApplier{next: e.store, delay: 100 * time.Millisecond}
	opts := e.options(counter)
	opts.BatchSize = 20
	// A generous grace: on a loaded machine the batches in hand may take seconds, and a drain
	// cut short by the grace is TestWorkerShutdownGraceBounded's case, not this one's.
	opts.ShutdownGrace = 30 * time.Second
	r := start(t, opts)
	eventually(t, 30*time.Second, "a few batches applied", func() bool { return counter.calls.Load() >= 3 })

	began := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	t.Logf("Run returned %v after cancel", time.Since(began).Round(time.Millisecond))
	applied := counter.appliedCount()
	if applied == 0 || applied == n {
		t.Fatalf("%d of %d applied: the test did not stop the worker mid-stream", applied, n)
	}
	// Acks are asynchronous (JetStream processes them apart from the info request): wait for
	// the consumer to reflect them, then check it acknowledged exactly what was applied.
	var info *jetstream.ConsumerInfo
	t.Cleanup(func() { // seen once under the full suite: say where the acks stood
		if t.Failed() && info != nil {
			t.Logf("consumer at the end: ack floor %d, ack pending %d, pending %d, redelivered %d, delivered %d; store applied %d of %d",
				info.AckFloor.Stream, info.NumAckPending, info.NumPending, info.NumRedelivered, info.Delivered.Stream, applied, n)
		}
	})
	eventually(t, 30*time.Second, "the acks of the applied events processed", func() bool {
		info = e.consumerInfo(t, "")
		return info.NumAckPending == 0 && info.AckFloor.Stream >= uint64(applied)
	})
	if info.AckFloor.Stream != uint64(applied) {
		t.Errorf("ack floor %d, but the store applied %d events", info.AckFloor.Stream, applied)
	}
	if info.NumPending != uint64(n-applied) {
		t.Errorf("%d pending, want %d", info.NumPending, n-applied)
	}
	if got := counter.appliedCount(); got != applied {
		t.Errorf("the store applied %d events after Run returned (had %d)", got, applied)
	}
}

// TestWorkerShutdownGraceBounded cancels a worker stuck in a slow store call: Run returns
// soon after the grace, and the messages it could not finish are handed back at once (a new
// worker applies them well before their AckWait would have run out).
func TestWorkerShutdownGraceBounded(t *testing.T) {
	e := newEnv(t)
	for i := range 20 {
		e.publishEvent(t, testEvent{ID: fmt.Sprintf("evt_sg%d", i), Name: "inquiry.created",
			InquiryID: fmt.Sprintf("inq_sg%d", i), Status: persona.StatusCreated, At: testNow})
	}
	slow := &countingApplier{next: e.store, delay: time.Minute}
	opts := e.options(slow)
	opts.ShutdownGrace = 300 * time.Millisecond
	r := start(t, opts)
	eventually(t, 5*time.Second, "a store call in flight", func() bool { return slow.calls.Load() >= 1 })
	began := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	// Well under the minute-long store call, with room for a loaded machine's stalls.
	if d := time.Since(began); d > 20*time.Second {
		t.Errorf("Run took %v to return with a 300ms grace (the store call takes a minute)", d)
	}

	start(t, e.options(e.store))
	eventually(t, 10*time.Second, "everything applied by the next worker", func() bool {
		info := e.consumerInfo(t, "")
		return info.AckFloor.Stream == 20 && info.NumAckPending == 0
	})
}

func TestRunReturnsWhenIdle(t *testing.T) {
	e := newEnv(t)
	opts := e.options(e.store)
	opts.ShutdownGrace = 2 * time.Minute // an idle worker must not wait it out
	r := start(t, opts)
	time.Sleep(200 * time.Millisecond)
	began := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if d := time.Since(began); d > 30*time.Second {
		t.Errorf("idle worker took %v to stop (grace %v)", d, opts.ShutdownGrace)
	}
}

// TestRunWaitsForStream starts a worker before its events stream exists: Run does not return,
// Ready names the missing stream, and once the stream is created the worker consumes.
func TestRunWaitsForStream(t *testing.T) {
	e := newEnv(t)
	if err := e.js.DeleteStream(context.Background(), e.stream); err != nil {
		t.Fatal(err)
	}
	w, logs, stop := startLogged(t, e.options(e.store))
	eventually(t, 10*time.Second, "the missing stream logged", func() bool {
		return strings.Contains(logs.String(), "worker cannot consume, retrying") && strings.Contains(logs.String(), "stream not found")
	})
	if err := w.Ready(); err == nil || !strings.Contains(err.Error(), "stream not found") {
		t.Fatalf("Ready = %v, want the missing stream", err)
	}
	if _, err := eventstream.Ensure(context.Background(), e.js, eventstream.Config{Name: e.stream}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "ready once the stream exists", func() bool { return w.Ready() == nil })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if w.Ready() == nil {
		t.Error("Ready after Run returned")
	}
}

// Compile-time checks that the real store fits the worker's interfaces.
var (
	_ Applier        = (*state.Store)(nil)
	_ pinger         = (*state.Store)(nil)
	_ InquiryCounter = (*state.Store)(nil)
)
