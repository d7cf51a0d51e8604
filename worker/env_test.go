package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// env is one test's world: an embedded NATS server with the events stream, and a state store
// on the shared test Redis under the test's own prefix.
type env struct {
	t      testing.TB
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
	dlq    string
	store  *state.Store
	rdb    redis.UniversalClient
}

func newEnv(t testing.TB) *env {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	return newEnvWithRedis(t, rdb, prefix)
}

func newEnvWithRedis(t testing.TB, rdb redis.UniversalClient, prefix string) *env {
	t.Helper()
	srv := testenv.NATS(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	e := &env{t: t, nc: nc, js: js, stream: "EV_" + prefix, dlq: "DLQ_" + prefix, rdb: rdb}
	ctx := t.Context()
	if _, err := eventstream.Ensure(ctx, js, eventstream.Config{Name: e.stream}); err != nil {
		t.Fatal(err)
	}
	e.store = newStore(t, rdb, prefix)
	return e
}

// testNow is the state store's clock in these tests: event times are set around it, so
// fixtures stay valid (not purged as past their retention) whatever day the tests run.
var testNow = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

func newStore(t testing.TB, rdb redis.UniversalClient, prefix string) *state.Store {
	t.Helper()
	s, err := state.New(rdb, state.Config{
		Prefix:        prefix,
		Shards:        4,
		EventMemory:   72 * time.Hour,
		Retention:     30 * 24 * time.Hour,
		ExpiryDefault: 24 * time.Hour,
		Now:           func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatalf("state.New: %v", err)
	}
	return s
}

// options are the test defaults: this env's streams, a short fetch wait and short retries.
func (e *env) options(store Applier) Options {
	return Options{
		JetStream:     e.js,
		Stream:        e.stream,
		DLQStream:     e.dlq,
		Store:         store,
		RetryDelay:    50 * time.Millisecond,
		MaxRetryDelay: 200 * time.Millisecond,
		ShutdownGrace: 5 * time.Second,
		StatsInterval: 100 * time.Millisecond,
		Registerer:    prometheus.NewRegistry(),
		Logger:        testLogger(e.t),
	}
}

// testLogger writes the worker's logs to the test's output (shown for failed tests and -v).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// running is a Worker started by start.
type running struct {
	w      *Worker
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned err
	err    error
}

// stop cancels the worker and waits for Run to return, which must be within the grace.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(r.w.opts.ShutdownGrace + 5*time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

// start creates a Worker from opts, runs it until the test ends or stop is called, and
// returns once the worker has created its consumer.
func start(t testing.TB, opts Options) *running {
	t.Helper()
	w, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = w.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(opts.ShutdownGrace + 10*time.Second):
			t.Error("Run did not return at cleanup")
		}
	})
	eventually(t, 10*time.Second, "consumer created", func() bool {
		_, err := opts.JetStream.Consumer(context.Background(), opts.Stream, w.opts.Durable)
		return err == nil
	})
	return r
}

// startLogged creates a Worker from opts with its logs going to the returned buffer, runs it
// until the test ends or stop is called (which returns Run's error), and, unlike start, does
// not wait for its consumer: for tests of a worker that cannot consume yet.
func startLogged(t testing.TB, opts Options) (w *Worker, logs *testenv.Buffer, stop func() error) {
	t.Helper()
	logs = &testenv.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	w, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if w.Ready() == nil {
		t.Fatal("Ready before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { runErr = w.Run(ctx); close(done) }()
	stop = func() error { cancel(); <-done; return runErr }
	t.Cleanup(func() { stop() })
	return w, logs, stop
}

// testEvent is what eventBody turns into a Persona webhook body (PERSONA.md §3).
type testEvent struct {
	ID, Name, InquiryID string
	Status              persona.Status // "" leaves it out
	At                  time.Time      // the event's created-at
	Payload             string         // "inquiry" (default) or "inquiry-session"
}

// eventBody builds a realistic event envelope (PERSONA.md §3, kebab-case keys).
func eventBody(t testing.TB, ev testEvent) []byte {
	t.Helper()
	created := ev.At.Add(-10 * time.Minute)
	var payload map[string]any
	if ev.Payload == "inquiry-session" {
		payload = map[string]any{"data": map[string]any{
			"type": "inquiry-session", "id": "iqse_" + ev.ID,
			"attributes": map[string]any{"status": "active", "created-at": ev.At.Format(time.RFC3339Nano)},
			"relationships": map[string]any{
				"inquiry": map[string]any{"data": map[string]any{"type": "inquiry", "id": ev.InquiryID}},
			},
		}}
	} else {
		attrs := map[string]any{
			"reference-id": "user-" + ev.InquiryID,
			"created-at":   created.Format(time.RFC3339Nano),
			"started-at":   nil,
			"expires-at":   created.Add(24 * time.Hour).Format(time.RFC3339Nano),
			"completed-at": nil, "failed-at": nil, "expired-at": nil, "redacted-at": nil,
			"fields": map[string]any{
				"email-address": map[string]any{"type": "string", "value": "user-" + ev.InquiryID + "@example.com"},
				"name-first":    map[string]any{"type": "string", "value": "Jane"},
			},
		}
		if ev.Status != "" {
			attrs["status"] = string(ev.Status)
		}
		payload = map[string]any{
			"data": map[string]any{
				"type": "inquiry", "id": ev.InquiryID, "attributes": attrs,
				"relationships": map[string]any{
					"inquiry-template": map[string]any{"data": map[string]any{"type": "inquiry-template", "id": "itmpl_test"}},
					"account":          map[string]any{"data": map[string]any{"type": "account", "id": "act_test"}},
				},
			},
			"included": []any{},
		}
	}
	body, err := json.Marshal(map[string]any{"data": map[string]any{
		"type": "event", "id": ev.ID,
		"attributes": map[string]any{
			"name":       ev.Name,
			"created-at": ev.At.Format(time.RFC3339Nano),
			"payload":    payload,
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// publish stores body in the events stream the way the webhook receiver does: subject from
// the event name, Nats-Msg-Id the event id (msgID overrides it) and the receiver's headers.
func (e *env) publish(t testing.TB, name, msgID string, body []byte) uint64 {
	t.Helper()
	m := nats.NewMsg(eventstream.Subject(name))
	m.Data = body
	m.Header.Set(nats.MsgIdHdr, msgID)
	m.Header.Set(eventstream.HeaderEventName, name)
	m.Header.Set(eventstream.HeaderReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
	ack, err := e.js.PublishMsg(context.Background(), m, jetstream.WithExpectStream(e.stream))
	if err != nil {
		t.Fatalf("publish %s: %v", msgID, err)
	}
	return ack.Sequence
}

// publishEvent publishes the body of ev with its id as Nats-Msg-Id.
func (e *env) publishEvent(t testing.TB, ev testEvent) uint64 {
	t.Helper()
	return e.publish(t, ev.Name, ev.ID, eventBody(t, ev))
}

// consumerInfo reads the worker's durable consumer.
func (e *env) consumerInfo(t testing.TB, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	if durable == "" {
		durable = DefaultDurable
	}
	c, err := e.js.Consumer(context.Background(), e.stream, durable)
	if err != nil {
		t.Fatalf("consumer %s: %v", durable, err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return info
}

// inquiry reads an inquiry from the store; nil when it is not there.
func inquiry(t testing.TB, s *state.Store, id string) *state.Inquiry {
	t.Helper()
	inq, err := s.Inquiry(context.Background(), id)
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("inquiry %s: %v", id, err)
	}
	return inq
}

// eventually polls cond until it holds or timeout passes. The timeout is what the condition
// should take; it is raised to a minute, as a loaded test machine can be many times slower,
// and waiting longer only delays a failure.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = max(timeout, time.Minute)
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countingApplier counts the calls and events that reach the store it wraps, and can be made
// to fail: failEach makes every event fail (Result.Err), delay slows every call.
type countingApplier struct {
	next     Applier
	calls    atomic.Int64
	events   atomic.Int64
	failEach bool
	delay    time.Duration

	mu      sync.Mutex
	applied map[string]bool // event ids the store confirmed
}

func (c *countingApplier) ApplyBatch(ctx context.Context, events []*persona.Event) ([]state.Result, error) {
	c.calls.Add(1)
	c.events.Add(int64(len(events)))
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if c.failEach {
		res := make([]state.Result, len(events))
		for i := range res {
			res[i].Err = fmt.Errorf("test: event %d refused", i)
		}
		return res, nil
	}
	res, err := c.next.ApplyBatch(ctx, events)
	if err == nil {
		c.mu.Lock()
		if c.applied == nil {
			c.applied = map[string]bool{}
		}
		for i, r := range res {
			if r.Err == nil {
				c.applied[events[i].ID] = true
			}
		}
		c.mu.Unlock()
	}
	return res, err
}

func (c *countingApplier) appliedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.applied)
}

// redisClient connects to addr with short timeouts and no retries, so a stopped server fails
// calls at once.
func redisClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:         addr,
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		MaxRetries:   -1,
	})
	t.Cleanup(func() { c.Close() })
	return c
}
