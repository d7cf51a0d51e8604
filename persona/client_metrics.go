package persona

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/promreg"
)

// clientMetrics are the client's Prometheus series. Labels are bounded: op is one of the four
// operation names and code an HTTP status or "error"; no id, token or e-mail ever is a label.
type clientMetrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	retries       *prometheus.CounterVec
	remaining     prometheus.Gauge
	limiterWaited prometheus.Histogram
}

// newClientMetrics creates the series and registers them on reg (nil: not registered). When
// another Client already registered them on reg (two roles in one process), the existing
// series are shared instead of failing.
func newClientMetrics(reg prometheus.Registerer) clientMetrics {
	m := clientMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_persona_requests_total",
			Help: "Persona API responses by operation and HTTP status (code \"error\": no response).",
		}, []string{"op", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "resumer_persona_request_duration_seconds",
			Help:    "Duration of single Persona API attempts by operation.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_persona_retries_total",
			Help: "Persona API attempts repeated after a transient failure (429, 5xx, network).",
		}, []string{"op"}),
		remaining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "resumer_persona_ratelimit_remaining",
			Help: "The ratelimit-remaining header of the latest Persona response.",
		}),
		limiterWaited: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "resumer_persona_limiter_wait_seconds",
			Help:    "Time spent waiting for the shared rate limiter before a Persona API attempt.",
			Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	if reg == nil {
		return m
	}
	m.requests = promreg.Register(reg, m.requests)
	m.duration = promreg.Register(reg, m.duration)
	m.retries = promreg.Register(reg, m.retries)
	m.remaining = promreg.Register(reg, m.remaining)
	m.limiterWaited = promreg.Register(reg, m.limiterWaited)
	return m
}
