package notify

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/promreg"
)

// channelMetrics are one channel's series. The scheduler owns the reminder outcome metrics;
// these only say how the channel itself behaves. Labels are bounded: channel is a channel's
// fixed Name and retry is "true" or "false".
type channelMetrics struct {
	duration prometheus.Observer
	errors   *prometheus.CounterVec
	channel  string
}

// newChannelMetrics creates the series shared by every channel and registers them on reg
// (nil: nowhere). Channels constructed on the same reg share the collectors, so building an
// e-mail and a webhook channel in one process, or two of either, does not fail. Any other
// registration error is a programming error and panics, as promauto does.
func newChannelMetrics(reg prometheus.Registerer, channel string) channelMetrics {
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "resumer_notify_channel_duration_seconds",
		Help: "Duration of single reminder delivery attempts by channel, failures included.",
		// SMTP dialogues and webhook calls: 5 ms to 40 s.
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	}, []string{"channel"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "resumer_notify_channel_errors_total",
		Help: "Failed reminder delivery attempts by channel and whether a retry may succeed (no_contact excluded).",
	}, []string{"channel", "retry"})
	if reg != nil {
		duration = promreg.Register(reg, duration)
		errs = promreg.Register(reg, errs)
	}
	// Expose both retry series from the start so rate() works before the first failure.
	errs.WithLabelValues(channel, "true")
	errs.WithLabelValues(channel, "false")
	return channelMetrics{duration: duration.WithLabelValues(channel), errors: errs, channel: channel}
}

// observe records one attempt that started at start and ended with err.
func (m channelMetrics) observe(start time.Time, retry bool, err error) {
	m.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.WithLabelValues(m.channel, strconv.FormatBool(retry)).Inc()
	}
}
