package reconcile

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/promreg"
)

// Label values of the reconciliation metrics; fixed sets, never an id.
const (
	passOK      = "ok"
	passFailed  = "error"
	passSkipped = "skipped" // another replica holds the lease

	pageEvents    = "events"
	pageInquiries = "inquiries"

	eventPublished = "published"
	eventDuplicate = "duplicate" // JetStream already had the event id
	eventUnparsed  = "unparsed"  // not an inquiry event resumer can read; not published

	diffStatus  = "status"
	diffExpiry  = "expiry"
	diffMissing = "missing" // tracked, but Persona does not list it
)

// metrics are the Reconciler's collectors.
type metrics struct {
	passes      *prometheus.CounterVec
	pages       *prometheus.CounterVec
	events      *prometheus.CounterVec
	checked     prometheus.Counter
	differences *prometheus.CounterVec
	lag         prometheus.Gauge
	lastSuccess prometheus.Gauge
	interval    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_reconcile_passes_total",
			Help: "Reconciliation passes by result: ok, error, skipped (another replica held the lease).",
		}, []string{"result"}),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_reconcile_pages_total",
			Help: "Persona API pages reconciliation read, by kind: events (Events API), inquiries (re-check by id).",
		}, []string{"kind"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_reconcile_events_total",
			Help: "Events read from Persona's Events API, by result: published, duplicate (already in the stream), unparsed.",
		}, []string{"result"}),
		checked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "resumer_reconcile_inquiries_checked_total",
			Help: "Tracked created/pending inquiries re-checked against Persona.",
		}),
		differences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_reconcile_differences_total",
			Help: "Differences the re-check found, by kind: status, expiry, missing (Persona does not list the inquiry).",
		}, []string{"kind"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "resumer_reconcile_lag_seconds",
			Help: "Age of the events checkpoint: events created since then have not been replayed yet.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "resumer_reconcile_last_success_timestamp_seconds",
			Help: "Unix time the last complete reconciliation pass of this replica ended; 0 until it completes one.",
		}),
		interval: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "resumer_reconcile_interval_seconds",
			Help: "Configured time between two reconciliation passes (RESUMER_RECONCILE_INTERVAL), which the alert on the last success's age is relative to.",
		}),
	}
	if reg == nil {
		return m
	}
	m.passes = promreg.Register(reg, m.passes)
	m.pages = promreg.Register(reg, m.pages)
	m.events = promreg.Register(reg, m.events)
	m.checked = promreg.Register(reg, m.checked)
	m.differences = promreg.Register(reg, m.differences)
	m.lag = promreg.Register(reg, m.lag)
	m.lastSuccess = promreg.Register(reg, m.lastSuccess)
	m.interval = promreg.Register(reg, m.interval)
	for _, r := range []string{passOK, passFailed, passSkipped} {
		m.passes.WithLabelValues(r)
	}
	for _, k := range []string{pageEvents, pageInquiries} {
		m.pages.WithLabelValues(k)
	}
	for _, r := range []string{eventPublished, eventDuplicate, eventUnparsed} {
		m.events.WithLabelValues(r)
	}
	for _, k := range []string{diffStatus, diffExpiry, diffMissing} {
		m.differences.WithLabelValues(k)
	}
	return m
}
