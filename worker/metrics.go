package worker

import (
	"errors"
	"fmt"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/state"
)

// The values of the "result" label of resumer_worker_events_total.
const (
	resultApplied   = "applied"   // the store changed the inquiry
	resultDuplicate = "duplicate" // the store had seen the event id
	resultStale     = "stale"     // older than what the store holds; nothing to change
	resultIgnored   = "ignored"   // stored but not acted on (e.g. unknown event)
	resultFailed    = "failed"    // not applied by this attempt: store error, or dead-lettered
	resultOther     = "other"     // an outcome this worker does not know; acknowledged
)

var results = []string{resultApplied, resultDuplicate, resultStale, resultIgnored, resultFailed, resultOther}

// The values of the "reason" label of resumer_worker_dead_letters_total, also written to the
// dead letter's eventstream.HeaderDeadReason header.
const (
	// ReasonMalformed marks a message whose body is not a Persona event
	// (persona.ErrMalformedEvent): it is dead-lettered on its first delivery.
	ReasonMalformed = "malformed"
	// ReasonInvalid marks an event the state store refused as invalid (state.ErrInvalidEvent),
	// which no retry can change: it is dead-lettered at once.
	ReasonInvalid = "invalid_event"
	// ReasonMaxDeliveries marks an event that failed on its own (a script error for that
	// event, not an unavailable store) at its MaxDeliver-th delivery.
	ReasonMaxDeliveries = "max_deliveries"
)

var deadReasons = []string{ReasonMalformed, ReasonInvalid, ReasonMaxDeliveries}

// eventOther is the event label of every event name not in knownEvents.
const eventOther = "other"

// knownEvents are the event names that get a label value of their own (PERSONA.md §4); any
// other name is counted as "other" so the label stays bounded whatever Persona sends.
var knownEvents = []string{
	"inquiry.created", "inquiry.started", "inquiry.completed", "inquiry.failed",
	"inquiry.expired", "inquiry.marked-for-review", "inquiry.approved", "inquiry.declined",
	"inquiry.redacted", "inquiry.transitioned",
	"inquiry-session.started", "inquiry-session.expired", "inquiry-session.canceled",
}

var knownEventSet = func() map[string]bool {
	m := make(map[string]bool, len(knownEvents))
	for _, n := range knownEvents {
		m[n] = true
	}
	return m
}()

// eventLabel bounds an event name to a label value.
func eventLabel(name string) string {
	if knownEventSet[name] {
		return name
	}
	return eventOther
}

// resultLabel maps a store outcome to a label value.
func resultLabel(o state.Outcome) string {
	switch o {
	case state.OutcomeApplied:
		return resultApplied
	case state.OutcomeDuplicate:
		return resultDuplicate
	case state.OutcomeStale:
		return resultStale
	case state.OutcomeIgnored:
		return resultIgnored
	}
	return resultOther
}

// metrics are the worker's Prometheus collectors. Label values come from the fixed sets above,
// never from an id or anything personal.
type metrics struct {
	events        *prometheus.CounterVec
	applyDuration prometheus.Histogram
	batchSize     prometheus.Histogram
	pending       prometheus.Gauge
	deadLetters   *prometheus.CounterVec
	bySource      *prometheus.CounterVec
	// oldestUnapplied is the age of the oldest event the consumer has not settled.
	oldestUnapplied prometheus.Gauge
	// storeUnavailable is 1 while this worker holds messages for an unavailable store.
	storeUnavailable prometheus.Gauge
	held             prometheus.Gauge
	storeFailures    prometheus.Counter
}

// sourceLabel bounds an event's eventstream.HeaderSource to a label value: webhook (no
// header), replay, synthetic, else other.
func sourceLabel(h string) string {
	switch h {
	case "":
		return eventstream.SourceWebhook
	case eventstream.SourceWebhook, eventstream.SourceReplay, eventstream.SourceSynthetic:
		return h
	}
	return resultOther
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_worker_events_total",
			Help: "Events the worker handled, by event name (known names, else other) and result: applied, duplicate, stale, ignored, failed, other.",
		}, []string{"event", "result"}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "resumer_worker_apply_duration_seconds",
			Help:    "Time one batch of events takes to apply to the state store (one round trip).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms to about 4 s
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "resumer_worker_batch_size",
			Help:    "Messages per batch the worker took from JetStream.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13), // 1 to 4096
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "resumer_worker_consumer_pending",
			Help: "Messages in the events stream the worker's consumer has not delivered yet.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_worker_dead_letters_total",
			Help: "Messages copied to the dead-letter stream, by reason: malformed, invalid_event, max_deliveries (the event failed on its own at its last allowed delivery).",
		}, []string{"reason"}),
		bySource: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_worker_events_by_source_total",
			Help: "Events the worker applied (any outcome but failed), by source: webhook (delivered by Persona), replay and synthetic (reconciliation), other.",
		}, []string{"source"}),
		oldestUnapplied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "resumer_worker_oldest_unapplied_age_seconds",
			Help: "Age of the oldest message in the events stream the worker's consumer has neither applied nor dead-lettered (0 when none). It is lost when it reaches the stream's max age.",
		}),
		storeUnavailable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "resumer_worker_store_unavailable",
			Help: "1 while this worker holds messages because the state store is unavailable (unreachable or refusing writes), else 0.",
		}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "resumer_worker_held_messages",
			Help: "Messages this worker holds (InProgress, no delivery spent) until the state store is available again.",
		}),
		storeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "resumer_worker_store_unavailable_total",
			Help: "Batch applies that failed as a whole because the state store was unavailable; they are held and retried, never dead-lettered.",
		}),
	}
	var err error
	if m.events, err = register(reg, m.events); err != nil {
		return nil, err
	}
	if m.applyDuration, err = register(reg, m.applyDuration); err != nil {
		return nil, err
	}
	if m.batchSize, err = register(reg, m.batchSize); err != nil {
		return nil, err
	}
	if m.pending, err = register(reg, m.pending); err != nil {
		return nil, err
	}
	if m.deadLetters, err = register(reg, m.deadLetters); err != nil {
		return nil, err
	}
	if m.bySource, err = register(reg, m.bySource); err != nil {
		return nil, err
	}
	for _, s := range []string{eventstream.SourceWebhook, eventstream.SourceReplay, eventstream.SourceSynthetic, resultOther} {
		m.bySource.WithLabelValues(s)
	}
	if m.oldestUnapplied, err = register(reg, m.oldestUnapplied); err != nil {
		return nil, err
	}
	if m.storeUnavailable, err = register(reg, m.storeUnavailable); err != nil {
		return nil, err
	}
	if m.held, err = register(reg, m.held); err != nil {
		return nil, err
	}
	if m.storeFailures, err = register(reg, m.storeFailures); err != nil {
		return nil, err
	}
	for _, e := range slices.Concat(knownEvents, []string{eventOther}) {
		for _, r := range results {
			m.events.WithLabelValues(e, r)
		}
	}
	for _, r := range deadReasons {
		m.deadLetters.WithLabelValues(r)
	}
	return m, nil
}

// register registers c with reg (nowhere when reg is nil). When reg already holds an identical
// collector, as when several workers share a registry, it returns that one instead.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metrics: %w", err)
}
