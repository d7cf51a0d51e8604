package notify

import (
	"context"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/mailcatch"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/state"
)

// schedT0 is when the scheduler tests' inquiries are created and started; with the
// simulator's defaults they expire 24 h later (PERSONA.md §5).
var schedT0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// fakeClock is an injectable clock safe for concurrent use, shared by the simulator, the
// store and the scheduler.
type fakeClock struct{ ms atomic.Int64 }

func newFakeClock(at time.Time) *fakeClock {
	c := &fakeClock{}
	c.ms.Store(at.UnixMilli())
	return c
}

func (c *fakeClock) Now() time.Time      { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *fakeClock) Set(at time.Time)    { c.ms.Store(at.UnixMilli()) }
func (c *fakeClock) Add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// schedEnv is everything a scheduler test runs against: real Redis under a fresh prefix, the
// Persona simulator and an SMTP catcher, all on one injected clock.
type schedEnv struct {
	clock  *fakeClock
	sim    *personatest.Server
	client *persona.Client
	redis  *redis.Client
	prefix string
	store  *state.Store
	mail   *mailcatch.Catcher
	email  *EmailChannel
	reg    *prometheus.Registry

	// localeField is the persona.ParseOptions.LocaleField events are parsed with.
	localeField string

	mu      sync.Mutex
	applied int // simulator events applied to the store so far
}

const schedFrom = "Acme Verification <verify@acme.example>"

// newSchedEnv starts the env; edits change the simulator's options.
func newSchedEnv(t *testing.T, edits ...func(*personatest.Options)) *schedEnv {
	t.Helper()
	e := &schedEnv{clock: newFakeClock(schedT0), reg: prometheus.NewRegistry()}
	simOpts := personatest.Options{Now: e.clock.Now, RateLimit: 1_000_000}
	for _, edit := range edits {
		edit(&simOpts)
	}
	e.sim = personatest.NewServer(t, simOpts)
	client, err := persona.NewClient(persona.ClientOptions{
		BaseURL: e.sim.URL(), APIKey: e.sim.APIKey(),
		// One attempt per call: the scheduler's own backoff is under test.
		MaxElapsed: time.Millisecond, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.client = client
	e.redis, e.prefix = testenv.Redis(t)
	e.store = e.newStore(t, e.redis)
	e.mail = mailcatch.Start(t, mailcatch.Options{MaxMessages: 10_000})
	e.email, err = NewEmailChannel(EmailOptions{URL: e.mail.URL(), From: schedFrom, Now: e.clock.Now, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newStore returns a Store under the env's prefix on client (another client stands for
// another replica).
func (e *schedEnv) newStore(t *testing.T, client redis.UniversalClient) *state.Store {
	t.Helper()
	s, err := state.New(client, state.Config{Prefix: e.prefix, Shards: 8, Now: e.clock.Now,
		// Leases run on Redis's clock, moved on as far as the test's clock has moved, so that
		// a test lets a lease run out by moving its clock.
		LeaseClockOffset: func() time.Duration { return e.clock.Now().Sub(schedT0) }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// replicaStore returns a Store on a client of its own, as another replica would have.
func (e *schedEnv) replicaStore(t *testing.T) *state.Store {
	t.Helper()
	opts, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return e.newStore(t, c)
}

// scheduler returns a scheduler on store (the env's when nil) with the e-mail channel, the
// simulator's client and the env's clock and registry; edit changes the options.
func (e *schedEnv) scheduler(t *testing.T, store ReminderStore, edit func(*SchedulerOptions)) *Scheduler {
	t.Helper()
	if store == nil {
		store = e.store
	}
	opts := SchedulerOptions{
		Store:      store,
		Persona:    e.client,
		Channels:   []Channel{e.email},
		Now:        e.clock.Now,
		Registerer: e.reg,
	}
	if edit != nil {
		edit(&opts)
	}
	s, err := NewScheduler(opts)
	if err != nil {
		t.Fatalf("NewScheduler: %v", err)
	}
	return s
}

// pending creates an inquiry at the simulator and starts it at the current clock.
func (e *schedEnv) pending(t *testing.T, params personatest.InquiryParams) *persona.Inquiry {
	t.Helper()
	inq := e.sim.CreateInquiry(params)
	if err := e.sim.Start(inq.ID); err != nil {
		t.Fatal(err)
	}
	return inq
}

// sync applies the simulator's events not applied yet, the way the webhook and the worker
// would: each body parsed by persona.ParseEvent, then state.Store.ApplyBatch.
func (e *schedEnv) sync(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	all := e.sim.Events()
	e.apply(t, all[e.applied:])
	e.applied = len(all)
}

// applyFor applies the simulator's events about inquiry id whose name is name, outside of
// sync's bookkeeping: an event delivered late.
func (e *schedEnv) applyFor(t *testing.T, id, name string) {
	t.Helper()
	var events []personatest.Event
	for _, ev := range e.sim.Events() {
		if ev.InquiryID == id && ev.Name == name {
			events = append(events, ev)
		}
	}
	if len(events) == 0 {
		t.Fatalf("no %s event of %s", name, id)
	}
	e.apply(t, events)
}

// apply parses and applies simulator events in batches.
func (e *schedEnv) apply(t *testing.T, events []personatest.Event) {
	t.Helper()
	for len(events) > 0 {
		n := min(len(events), 500)
		batch := make([]*persona.Event, n)
		for i, se := range events[:n] {
			ev, err := persona.ParseEventWith(se.Body, persona.ParseOptions{LocaleField: e.localeField})
			if err != nil {
				t.Fatalf("parse simulator event %s: %v", se.ID, err)
			}
			batch[i] = ev
		}
		results, err := e.store.ApplyBatch(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		events = events[n:]
	}
}

// sweep runs one sweep and fails the test on an error.
func sweep(t *testing.T, s *Scheduler) int {
	t.Helper()
	n, err := s.Sweep(context.Background())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	return n
}

// inquiry reads the store's record of id.
func (e *schedEnv) inquiry(t *testing.T, id string) *state.Inquiry {
	t.Helper()
	inq, err := e.store.Inquiry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return inq
}

// resumeCalls is the number of resume requests the simulator got for inquiry id.
func (e *schedEnv) resumeCalls(id string) int {
	return e.sim.PathRequests("/api/v1/inquiries/" + id + "/resume")
}

// metric returns the value of the series of name with the given label pairs in the env's
// registry: a counter's or gauge's value, a histogram's sample count; 0 when absent.
func (e *schedEnv) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return metricIn(t, e.reg, name, labels...)
}

// metricIn is schedEnv.metric on any registry.
func metricIn(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v != lp.GetValue() {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

// reminders is resumer_reminders_total for stage, the e-mail channel and outcome.
func (e *schedEnv) reminders(t *testing.T, stage, outcome string) float64 {
	t.Helper()
	return e.metric(t, "resumer_reminders_total", "stage", stage, "channel", "email", "outcome", outcome)
}

var hostedLink = regexp.MustCompile(`https://inquiry\.withpersona\.com/verify\?\S+`)

// sessionLink returns the inquiry id and session token of the hosted-flow link in m.
func sessionLink(t *testing.T, m mailcatch.Message) (inquiryID, token string) {
	t.Helper()
	raw := hostedLink.FindString(m.TextBody)
	if raw == "" {
		t.Fatalf("no hosted-flow link in the e-mail:\n%s", m.TextBody)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("inquiry-id"), u.Query().Get("session-token")
}

// messagesFor returns the caught messages whose Message-ID is that of inquiry id's stage.
func messagesFor(msgs []mailcatch.Message, id, stage string) int {
	want := MessageID(id, stage, "acme.example")
	n := 0
	for _, m := range msgs {
		if m.MessageID == want {
			n++
		}
	}
	return n
}
