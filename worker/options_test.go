package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// nopApplier applies nothing; for tests that never reach the store.
type nopApplier struct{}

func (nopApplier) ApplyBatch(context.Context, []*persona.Event) ([]state.Result, error) {
	return nil, nil
}

// fakeJS satisfies jetstream.JetStream for option checks; it is never called.
type fakeJS struct{ jetstream.JetStream }

func TestOptionsValidation(t *testing.T) {
	valid := func() Options { return Options{JetStream: fakeJS{}, Store: nopApplier{}} }
	tests := []struct {
		name    string
		change  func(*Options)
		wantErr string
	}{
		{"defaults", func(*Options) {}, ""},
		{"no jetstream", func(o *Options) { o.JetStream = nil }, "JetStream is required"},
		{"no store", func(o *Options) { o.Store = nil }, "Store is required"},
		{"same streams", func(o *Options) { o.DLQStream = eventstream.DefaultStream }, "must differ"},
		{"bad durable", func(o *Options) { o.Durable = "a.b" }, "Durable"},
		{"bad stream", func(o *Options) { o.Stream = "EV*" }, "Stream"},
		{"negative max deliver", func(o *Options) { o.MaxDeliver = -1 }, "MaxDeliver"},
		{"batch too big", func(o *Options) { o.BatchSize = MaxBatchSize + 1 }, "BatchSize"},
		{"negative batch", func(o *Options) { o.BatchSize = -5 }, "BatchSize"},
		{"negative fetch wait", func(o *Options) { o.FetchWait = -time.Second }, "FetchWait"},
		{"max retry below retry", func(o *Options) { o.RetryDelay = time.Minute }, "MaxRetryDelay"},
		{"max deliver 1", func(o *Options) { o.MaxDeliver = 1 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid()
			tt.change(&o)
			w, err := New(o)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, %v; want error containing %q", w, err, tt.wantErr)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{JetStream: fakeJS{}, Store: nopApplier{}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Stream != eventstream.DefaultStream || o.DLQStream != eventstream.DefaultDLQStream ||
		o.Durable != "state" || o.MaxDeliver != 10 || o.BatchSize != 256 || o.Logger == nil || o.Now == nil {
		t.Errorf("defaults = %+v", o)
	}
}

// TestConsumerConfig: whatever MaxDeliver, the consumer lets JetStream redeliver without
// limit and has no BackOff list (nats-server 2.9 refuses one unless MaxDeliver exceeds its
// length; TestConsumerOnDebianNATS checks against that server). The worker dead-letters.
func TestConsumerConfig(t *testing.T) {
	for _, maxDeliver := range []int{1, 2, 5, 10} {
		o, err := Options{JetStream: fakeJS{}, Store: nopApplier{}, MaxDeliver: maxDeliver}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		c := o.consumerConfig()
		if len(c.BackOff) != 0 {
			t.Errorf("MaxDeliver %d: BackOff %v", maxDeliver, c.BackOff)
		}
		if c.AckPolicy != jetstream.AckExplicitPolicy || c.AckWait != 30*time.Second ||
			c.MaxDeliver != -1 || c.MaxAckPending != 10000 || c.Durable != "state" {
			t.Errorf("consumer config %+v", c)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	o := Options{RetryDelay: time.Second, MaxRetryDelay: 30 * time.Second}
	for delivered, want := range map[uint64]time.Duration{
		0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		5: 16 * time.Second, 6: 30 * time.Second, 60: 30 * time.Second,
	} {
		if got := o.retryDelay(delivered); got != want {
			t.Errorf("retryDelay(%d) = %v, want %v", delivered, got, want)
		}
	}
}

func TestEventLabel(t *testing.T) {
	for name, want := range map[string]string{
		"inquiry.started":           "inquiry.started",
		"inquiry.marked-for-review": "inquiry.marked-for-review",
		"inquiry-session.canceled":  "inquiry-session.canceled",
		"inquiry.transitioned":      "inquiry.transitioned",
		"inquiry.something-new":     "other",
		"":                          "other",
		"evt_1234 jane@example.com": "other",
	} {
		if got := eventLabel(name); got != want {
			t.Errorf("eventLabel(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestWorkersShareRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := Options{JetStream: fakeJS{}, Store: nopApplier{}, Registerer: reg}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(opts)
	if err != nil {
		t.Fatalf("second worker on the same registry: %v", err)
	}
	if a.metrics.events != b.metrics.events {
		t.Error("workers on one registry do not share their counters")
	}
}
