package reconcile_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/reconcile"
	"github.com/resumer/resumer/state"
	"github.com/resumer/resumer/webhook"
	"github.com/resumer/resumer/worker"
)

const webhookSecret = "wbhsec_reconcile_test"

// pipeline is the whole receiving side on real components: the Persona simulator delivering
// signed webhooks to the receiver, the receiver publishing to an embedded JetStream, the
// worker applying the stream to Redis. Reconciliation publishes into the same stream.
type pipeline struct {
	sim     *personatest.Server
	js      jetstream.JetStream
	stream  string
	rdb     redis.UniversalClient
	prefix  string
	store   *state.Store
	persona *persona.Client
	reg     *prometheus.Registry
}

func newPipeline(t *testing.T, simOpts personatest.Options) *pipeline {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	srv := testenv.NATS(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{js: js, stream: "EV_" + prefix, rdb: rdb, prefix: prefix, reg: prometheus.NewRegistry()}
	ctx := t.Context()
	if _, err := eventstream.Ensure(ctx, js, eventstream.Config{Name: p.stream}); err != nil {
		t.Fatal(err)
	}
	dlq := "DLQ_" + prefix
	if _, err := eventstream.EnsureDLQ(ctx, js, dlq, 1); err != nil {
		t.Fatal(err)
	}
	if p.store, err = state.New(rdb, state.Config{Prefix: prefix, Shards: 8}); err != nil {
		t.Fatal(err)
	}
	rcv, err := webhook.New(webhook.Options{
		Secrets: [][]byte{[]byte(webhookSecret)}, Publisher: js, Stream: p.stream, Registerer: p.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rcv.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	w, err := worker.New(worker.Options{
		JetStream: js, Stream: p.stream, Durable: "state", DLQStream: dlq, Store: p.store,
		Counts: p.store, Registerer: p.reg, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(wctx); err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })

	simOpts.WebhookURLs = []string{hs.URL + webhook.Path}
	simOpts.WebhookSecret = webhookSecret
	if simOpts.WebhookRetryDelays == nil {
		simOpts.WebhookRetryDelays = []time.Duration{50 * time.Millisecond}
	}
	p.sim = personatest.NewServer(t, simOpts)
	p.persona, err = persona.NewClient(persona.ClientOptions{
		BaseURL: p.sim.URL(), APIKey: p.sim.APIKey(), Registerer: p.reg,
		InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// reconciler returns a Reconciler on the pipeline; edit may change its options.
func (p *pipeline) reconciler(t *testing.T, edit func(*reconcile.Options)) *reconcile.Reconciler {
	t.Helper()
	opts := reconcile.Options{
		Store: p.store, Persona: p.persona, Publisher: p.js, Stream: p.stream, Registerer: p.reg,
	}
	if edit != nil {
		edit(&opts)
	}
	r, err := reconcile.New(opts)
	if err != nil {
		t.Fatalf("reconcile.New: %v", err)
	}
	return r
}

// waitStatus waits until the store holds every inquiry of want in its status.
func (p *pipeline) waitStatus(t *testing.T, want map[string]persona.Status) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var wrong []string
		for id, st := range want {
			inq, err := p.store.Inquiry(context.Background(), id)
			if err != nil || inq.Status != st {
				got := "none"
				if err == nil {
					got = string(inq.Status)
				}
				wrong = append(wrong, id+": "+got+", want "+string(st))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store never caught up: %v", wrong)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDelivered waits until the simulator delivered every event emitted so far with
// webhooks on.
func (p *pipeline) waitDelivered(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := map[string]bool{}
		for _, d := range p.sim.Deliveries() {
			if d.OK {
				ok[d.EventID] = true
			}
		}
		missing := 0
		for _, ev := range p.sim.Events() {
			if ev.Delivered && !ok[ev.ID] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events never delivered", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue is the value of the counter or gauge name{label="value"} in the pipeline's
// registry, or of the unlabelled name when label is "" (0 when absent).
func metricValue(t *testing.T, p *pipeline, name, label, value string) float64 {
	t.Helper()
	families, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label == "" && len(m.GetLabel()) == 0 {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// waitCounter waits until get returns at least want.
func waitCounter(t *testing.T, get func() float64, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for get() < want {
		if time.Now().After(deadline) {
			t.Fatalf("counter = %v, want at least %v", get(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
