package api

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/promreg"
)

// metrics are the API's series. Labels are bounded: route is one of the three route
// patterns, code an HTTP status.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	minted   prometheus.Counter
}

// newMetrics creates the series and registers them on reg (nil: nowhere). Servers built on
// the same reg share the collectors; any other registration error is a programming error and
// panics, as promauto does.
func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resumer_api_requests_total",
			Help: "Requests to the resume API and the /r/ redirect links by route pattern and HTTP status.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "resumer_api_request_duration_seconds",
			Help: "Duration of requests to the resume API and the /r/ redirect links by route pattern.",
			// Redis reads of a millisecond up to Persona calls bounded by the resume timeout.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"route"}),
		minted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "resumer_api_sessions_minted_total",
			Help: "Session tokens Persona handed out through the resume API and the /r/ redirect links.",
		}),
	}
	if reg != nil {
		m.requests = promreg.Register(reg, m.requests)
		m.duration = promreg.Register(reg, m.duration)
		m.minted = promreg.Register(reg, m.minted)
	}
	return m
}
