package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// Applier is what the worker needs from the state store: apply a batch of events in one round
// trip. *state.Store implements it.
//
// ApplyBatch returns one Result per event, in order. A Result with a non-nil Err means that
// one event could not be applied, through a fault of its own: the worker retries it until its
// MaxDeliver-th delivery and then dead-letters it, and dead-letters it at once when the error
// wraps state.ErrInvalidEvent, which no retry can fix. So an Applier must never report a
// store-wide condition (unreachable, OOM, READONLY, LOADING, ...) as an event's error: that is
// the non-nil error, which means the whole batch failed, nothing may be acknowledged and the
// worker holds the messages (state.Store reports every such condition so).
//
// An Applier that also has a method Ping(ctx) error (as *state.Store does, with a real write)
// is probed after a whole-batch failure, and the held messages are applied again only once it
// succeeds. A whole-batch failure never spends a message's delivery (see Worker.Run).
type Applier interface {
	ApplyBatch(ctx context.Context, events []*persona.Event) ([]state.Result, error)
}

// pinger is the optional health check of an Applier.
type pinger interface {
	Ping(ctx context.Context) error
}

// Defaults for Options.
const (
	DefaultDurable       = "state"
	DefaultMaxDeliver    = 10
	DefaultBatchSize     = 256
	DefaultFetchWait     = 2 * time.Millisecond
	DefaultRetryDelay    = time.Second
	DefaultMaxRetryDelay = 30 * time.Second
	DefaultAckWait       = 30 * time.Second
	DefaultShutdownGrace = 10 * time.Second
	DefaultStatsInterval = 15 * time.Second

	// MaxBatchSize bounds Options.BatchSize: a batch is one Redis pipeline, and the consumer
	// allows maxAckPending unacknowledged messages across every replica.
	MaxBatchSize = 4096
)

// maxAckPending is how many delivered, unacknowledged messages the consumer allows across
// every replica: room for many replicas' batches and buffers.
const maxAckPending = 10000

// Options configure a Worker. JetStream and Store are required; every other zero value takes
// the default named in its comment.
type Options struct {
	// JetStream is the connection's JetStream context. The worker does not close it.
	JetStream jetstream.JetStream
	// Stream is the events stream (eventstream.DefaultStream). It must exist when Run starts:
	// eventstream.Ensure creates it.
	Stream string
	// Durable is the name of the consumer every replica shares (DefaultDurable).
	Durable string
	// DLQStream is the dead-letter stream (eventstream.DefaultDLQStream); Run creates or
	// updates it with eventstream.EnsureDLQ, with the events stream's replica count.
	DLQStream string
	// Subjects is the deployment's subject scheme (RESUMER_SUBJECT_PREFIX): events on its
	// Other subjects are about other objects than inquiries and are acknowledged without
	// being applied. The zero value is eventstream's default prefix.
	Subjects eventstream.Subjects
	// MaxDeliver is the delivery at which an event that fails on its own (a script error for
	// that event) is dead-lettered with ReasonMaxDeliveries instead of retried
	// (DefaultMaxDeliver). At least 1. The worker decides this itself from the message's
	// delivery count; the consumer lets JetStream redeliver without limit, so no message is
	// ever left in the stream unapplied and not dead-lettered. An unavailable store never
	// spends deliveries (the worker holds the messages), so it never dead-letters an event.
	MaxDeliver int
	// LocaleField, when set, names the inquiry field whose value (a language tag or country
	// code) the store keeps as the inquiry's locale, for the language of its reminders
	// (RESUMER_LOCALE_FIELD; persona.ParseOptions).
	LocaleField string
	// BatchSize is the most events applied in one store call (DefaultBatchSize), at most
	// MaxBatchSize.
	BatchSize int
	// FetchWait is the longest a batch waits for more messages once it has its first one
	// (DefaultFetchWait). A batch is applied as soon as it is full or the wait is over, so a
	// backlog is applied in full batches and a lone event waits at most FetchWait.
	FetchWait time.Duration
	// RetryDelay is the redelivery delay after the first failed apply; it doubles with every
	// further delivery up to MaxRetryDelay (DefaultRetryDelay, DefaultMaxRetryDelay). The same
	// schedule paces the store probes while the store is unavailable.
	RetryDelay, MaxRetryDelay time.Duration
	// AckWait is how long a replica has to acknowledge a message before JetStream gives it to
	// another (DefaultAckWait). A worker holding messages for an unavailable store renews it
	// every third of AckWait.
	AckWait time.Duration
	// ShutdownGrace bounds how long Run, once its context is cancelled, keeps finishing the
	// batch in hand and the messages already fetched (DefaultShutdownGrace). Messages it
	// could not finish are redelivered by JetStream.
	ShutdownGrace time.Duration
	// StatsInterval is how often the consumer-pending gauge and, with Counts, the inquiry
	// gauges are refreshed (DefaultStatsInterval).
	StatsInterval time.Duration
	// Store applies the events. Required.
	Store Applier
	// Counts, when set, feeds the resumer_inquiries gauges (see InquiryMetrics); give it to
	// the workers of one deployment, or run an InquiryMetrics elsewhere.
	Counts InquiryCounter
	// Logger receives the worker's logs, with component=worker (none when nil).
	Logger *slog.Logger
	// Registerer receives the worker's metrics (none are registered when nil). Several
	// workers may share one Registerer: they share its collectors.
	Registerer prometheus.Registerer
	// Now is the clock that times store calls and outages (time.Now).
	Now func() time.Time
}

// withDefaults returns opts with defaults filled in, or an error naming the first bad option.
func (o Options) withDefaults() (Options, error) {
	if o.JetStream == nil {
		return o, errors.New("create worker: JetStream is required")
	}
	if o.Store == nil {
		return o, errors.New("create worker: Store is required")
	}
	if o.Stream == "" {
		o.Stream = eventstream.DefaultStream
	}
	if o.Durable == "" {
		o.Durable = DefaultDurable
	}
	if o.DLQStream == "" {
		o.DLQStream = eventstream.DefaultDLQStream
	}
	if o.DLQStream == o.Stream {
		return o, fmt.Errorf("create worker: DLQStream %q must differ from Stream", o.DLQStream)
	}
	for _, n := range [][2]string{{"Stream", o.Stream}, {"Durable", o.Durable}, {"DLQStream", o.DLQStream}} {
		if !validName(n[1]) {
			return o, fmt.Errorf("create worker: %s %q: use letters, digits, '-' and '_' only", n[0], n[1])
		}
	}
	if o.MaxDeliver == 0 {
		o.MaxDeliver = DefaultMaxDeliver
	}
	if o.MaxDeliver < 1 {
		return o, fmt.Errorf("create worker: MaxDeliver %d: want at least 1", o.MaxDeliver)
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.BatchSize < 1 || o.BatchSize > MaxBatchSize {
		return o, fmt.Errorf("create worker: BatchSize %d: want 1 to %d", o.BatchSize, MaxBatchSize)
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"FetchWait", &o.FetchWait, DefaultFetchWait},
		{"RetryDelay", &o.RetryDelay, DefaultRetryDelay},
		{"MaxRetryDelay", &o.MaxRetryDelay, DefaultMaxRetryDelay},
		{"AckWait", &o.AckWait, DefaultAckWait},
		{"ShutdownGrace", &o.ShutdownGrace, DefaultShutdownGrace},
		{"StatsInterval", &o.StatsInterval, DefaultStatsInterval},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return o, fmt.Errorf("create worker: %s %v: want a positive duration", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.MaxRetryDelay < o.RetryDelay {
		return o, fmt.Errorf("create worker: MaxRetryDelay %v is shorter than RetryDelay %v", o.MaxRetryDelay, o.RetryDelay)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// validName reports whether s can name a stream or consumer and be a subject token.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// retryDelay is the NakWithDelay delay for a message delivered n times: RetryDelay doubled per
// earlier delivery, at most MaxRetryDelay.
func (o *Options) retryDelay(delivered uint64) time.Duration {
	d := o.RetryDelay
	for i := uint64(1); i < delivered && d < o.MaxRetryDelay; i++ {
		d *= 2
	}
	return min(d, o.MaxRetryDelay)
}

// consumerConfig is the durable consumer every replica creates or updates to. It has no
// BackOff list and no delivery limit: the worker paces retries with NakWithDelay and decides
// dead-lettering itself (see MaxDeliver), and nats-server 2.9 refuses a BackOff list unless
// MaxDeliver exceeds its length, even with unlimited deliveries.
func (o *Options) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       o.Durable,
		Description:   "resumer worker: applies Persona events to the inquiry state",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}
