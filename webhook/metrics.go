package webhook

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/persona"
)

// outcome is the value of the "outcome" label of resumer_webhook_requests_total: what the
// receiver did with one request.
type outcome string

const (
	outcomeAccepted     outcome = "accepted"     // 200, stored now
	outcomeDuplicate    outcome = "duplicate"    // 200, stored before (duplicate PubAck)
	outcomeUnauthorized outcome = "unauthorized" // 401
	outcomeMalformed    outcome = "malformed"    // 400 (and 405 when mounted without the mux pattern)
	outcomeTooLarge     outcome = "too_large"    // 413
	outcomeUnavailable  outcome = "unavailable"  // 503, Persona retries
)

var outcomes = []outcome{
	outcomeAccepted, outcomeDuplicate, outcomeUnauthorized,
	outcomeMalformed, outcomeTooLarge, outcomeUnavailable,
}

// The values of the "reason" label of resumer_webhook_verify_failures_total.
const (
	reasonMissing   = "missing"
	reasonMalformed = "malformed"
	reasonTooOld    = "too_old"
	reasonInFuture  = "in_future"
	reasonNoMatch   = "no_match"
)

var reasons = []string{reasonMissing, reasonMalformed, reasonTooOld, reasonInFuture, reasonNoMatch}

// The values of the "source" label of resumer_webhook_event_time_fallbacks_total: where the
// time of an event without its own created-at came from (PERSONA.md §3), as in the stored
// message's header.
const (
	sourceUpdatedAt  = eventstream.TimeSourceUpdatedAt  // the payload object's updated-at
	sourceReceivedAt = eventstream.TimeSourceReceivedAt // the receive time
)

// timeSourceLabel maps an event's time source (not persona.TimeFromEvent) to its label.
func timeSourceLabel(s persona.TimeSource) string {
	if s == persona.TimeFromUpdatedAt {
		return sourceUpdatedAt
	}
	return sourceReceivedAt
}

// failureReason maps a signature error to its metric label.
func failureReason(err error) string {
	switch {
	case errors.Is(err, ErrNotSigned):
		return reasonMissing
	case errors.Is(err, ErrMalformedHeader):
		return reasonMalformed
	case errors.Is(err, ErrTooOld):
		return reasonTooOld
	case errors.Is(err, ErrInFuture):
		return reasonInFuture
	default:
		return reasonNoMatch
	}
}

// metrics are the receiver's Prometheus collectors. Labels take only the fixed values above:
// never an id, an e-mail or anything else from a request.
type metrics struct {
	requests        *prometheus.CounterVec
	events          *prometheus.CounterVec
	timeFallbacks   *prometheus.CounterVec
	verifyFailures  *prometheus.CounterVec
	requestDuration prometheus.Histogram
	publishDuration prometheus.Histogram
}

// newMetrics creates the collectors and registers them with reg; a nil reg registers them
// nowhere. Like promauto, it panics when reg already holds collectors of these names.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	// 1 ms to about 4 s: Persona gives up after 5 s (PERSONA.md §2).
	buckets := prometheus.ExponentialBuckets(0.001, 2, 13)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_webhook_requests_total",
			Help: "Persona webhook requests by outcome: accepted, duplicate, unauthorized, malformed, too_large, unavailable.",
		}, []string{"outcome"}),
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_webhook_events_total",
			Help: "Persona events stored (newly, not duplicates), by the kind of object they are about: inquiry, inquiry-session, verification, document, account, case, report, transaction, other.",
		}, []string{"kind"}),
		timeFallbacks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_webhook_event_time_fallbacks_total",
			Help: "Persona events stored without a created-at of their own, by where their time came from: updated_at (the payload's), received_at.",
		}, []string{"source"}),
		verifyFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_webhook_verify_failures_total",
			Help: "Persona webhook requests refused by the signature check, by reason: missing, malformed, too_old, in_future, no_match.",
		}, []string{"reason"}),
		requestDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "resumer_webhook_request_duration_seconds",
			Help:    "Time the receiver takes to answer a Persona webhook request, body read included.",
			Buckets: buckets,
		}),
		publishDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "resumer_webhook_publish_duration_seconds",
			Help:    "Time from publishing an event to JetStream to its PubAck or the failure.",
			Buckets: buckets,
		}),
	}
	for _, o := range outcomes {
		m.requests.WithLabelValues(string(o))
	}
	for _, r := range reasons {
		m.verifyFailures.WithLabelValues(r)
	}
	for _, k := range persona.EventObjects() {
		m.events.WithLabelValues(k)
	}
	for _, s := range []string{sourceUpdatedAt, sourceReceivedAt} {
		m.timeFallbacks.WithLabelValues(s)
	}
	return m
}
