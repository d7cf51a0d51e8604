package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/persona"
)

// InquiryCounter is what InquiryMetrics needs from the state store. *state.Store implements it.
type InquiryCounter interface {
	// CountByStatus counts the tracked inquiries by status.
	CountByStatus(ctx context.Context) (map[persona.Status]int64, error)
	// CountExpiring counts the resumable inquiries that expire within the given time.
	CountExpiring(ctx context.Context, within time.Duration) (int64, error)
}

// expiringWindows are the values of the "within" label of resumer_inquiries_expiring.
var expiringWindows = []struct {
	label  string
	within time.Duration
}{
	{"1h", time.Hour},
	{"6h", 6 * time.Hour},
	{"24h", 24 * time.Hour},
}

// statusLabels are the values of the "status" label of resumer_inquiries besides "other".
var statusLabels = []persona.Status{
	persona.StatusCreated, persona.StatusPending, persona.StatusCompleted, persona.StatusFailed,
	persona.StatusExpired, persona.StatusNeedsReview, persona.StatusApproved,
	persona.StatusDeclined, persona.StatusRedacted,
}

// InquiryMetrics keeps two gauges fresh from an InquiryCounter: resumer_inquiries{status}
// (documented statuses, anything else summed as "other") and
// resumer_inquiries_expiring{within="1h|6h|24h"}. Every replica that runs one reports the same
// values, so dashboards aggregate them with max, not sum.
type InquiryMetrics struct {
	counts   InquiryCounter
	logger   *slog.Logger
	byStatus *prometheus.GaugeVec
	expiring *prometheus.GaugeVec
}

// NewInquiryMetrics creates the gauges and registers them with reg (nowhere when reg is nil;
// an identical collector already in reg is shared). It fails when reg refuses them.
func NewInquiryMetrics(counts InquiryCounter, reg prometheus.Registerer, logger *slog.Logger) (*InquiryMetrics, error) {
	if counts == nil {
		return nil, fmt.Errorf("create inquiry metrics: no InquiryCounter")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &InquiryMetrics{
		counts: counts,
		logger: logger,
		byStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "resumer_inquiries",
			Help: "Tracked inquiries by status (documented Persona statuses, else other).",
		}, []string{"status"}),
		expiring: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "resumer_inquiries_expiring",
			Help: "Resumable (created or pending) inquiries that expire within 1h, 6h or 24h.",
		}, []string{"within"}),
	}
	var err error
	if m.byStatus, err = register(reg, m.byStatus); err != nil {
		return nil, fmt.Errorf("create inquiry metrics: %w", err)
	}
	if m.expiring, err = register(reg, m.expiring); err != nil {
		return nil, fmt.Errorf("create inquiry metrics: %w", err)
	}
	return m, nil
}

// Refresh reads the counts once and sets the gauges. On error the gauges keep their previous
// values (a gauge that was never set is absent) and the error is returned.
func (m *InquiryMetrics) Refresh(ctx context.Context) error {
	counts, err := m.counts.CountByStatus(ctx)
	if err != nil {
		return fmt.Errorf("count inquiries by status: %w", err)
	}
	expiring := make([]int64, len(expiringWindows))
	for i, w := range expiringWindows {
		if expiring[i], err = m.counts.CountExpiring(ctx, w.within); err != nil {
			return fmt.Errorf("count inquiries expiring within %s: %w", w.label, err)
		}
	}
	var other int64
	for status, n := range counts {
		if !status.Known() {
			other += n
		}
	}
	for _, s := range statusLabels {
		m.byStatus.WithLabelValues(string(s)).Set(float64(counts[s]))
	}
	m.byStatus.WithLabelValues("other").Set(float64(other))
	for i, w := range expiringWindows {
		m.expiring.WithLabelValues(w.label).Set(float64(expiring[i]))
	}
	return nil
}

// Run refreshes the gauges now and then every interval until ctx is done. A failing refresh
// is logged when it starts failing and when it recovers, not on every tick.
func (m *InquiryMetrics) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultStatsInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		rctx, cancel := context.WithTimeout(ctx, interval)
		err := m.Refresh(rctx)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			m.logger.Warn("inquiry gauges not refreshed", "err", err)
			failing = true
		case err == nil && failing:
			m.logger.Info("inquiry gauges refreshed again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
