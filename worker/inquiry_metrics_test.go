package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
)

// fakeCounts is an InquiryCounter with fixed answers.
type fakeCounts struct {
	byStatus map[persona.Status]int64
	expiring map[time.Duration]int64
	err      error
}

func (f *fakeCounts) CountByStatus(context.Context) (map[persona.Status]int64, error) {
	return f.byStatus, f.err
}

func (f *fakeCounts) CountExpiring(_ context.Context, within time.Duration) (int64, error) {
	return f.expiring[within], f.err
}

func TestInquiryMetricsBoundsStatuses(t *testing.T) {
	counts := &fakeCounts{
		byStatus: map[persona.Status]int64{
			persona.StatusPending: 7, persona.StatusCompleted: 3, "brand_new": 2, "another_one": 1,
		},
		expiring: map[time.Duration]int64{time.Hour: 1, 6 * time.Hour: 4, 24 * time.Hour: 6},
	}
	reg := prometheus.NewRegistry()
	m, err := NewInquiryMetrics(counts, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for label, want := range map[string]float64{"pending": 7, "completed": 3, "created": 0, "other": 3} {
		if got := testutil.ToFloat64(m.byStatus.WithLabelValues(label)); got != want {
			t.Errorf("resumer_inquiries{status=%q} = %v, want %v", label, got, want)
		}
	}
	if n := testutil.CollectAndCount(m.byStatus); n != len(statusLabels)+1 {
		t.Errorf("%d status series, want %d", n, len(statusLabels)+1)
	}
	for label, want := range map[string]float64{"1h": 1, "6h": 4, "24h": 6} {
		if got := testutil.ToFloat64(m.expiring.WithLabelValues(label)); got != want {
			t.Errorf("resumer_inquiries_expiring{within=%q} = %v, want %v", label, got, want)
		}
	}

	// A failed refresh keeps the last values.
	counts.err = errors.New("redis down")
	if err := m.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh with a failing counter succeeded")
	}
	if got := testutil.ToFloat64(m.byStatus.WithLabelValues("pending")); got != 7 {
		t.Errorf("pending after failed refresh = %v, want 7", got)
	}
}

func TestInquiryMetricsFromStore(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	store := newStore(t, rdb, prefix)
	now := testNow
	var events []*persona.Event
	for i := range 5 {
		status, name := persona.StatusPending, "inquiry.started"
		if i >= 3 {
			status, name = persona.StatusCompleted, "inquiry.completed"
		}
		ev, err := persona.ParseEvent(eventBody(t, testEvent{
			ID: fmt.Sprintf("evt_im%d", i), Name: name, InquiryID: fmt.Sprintf("inq_im%d", i), Status: status, At: now,
		}))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if _, err := store.ApplyBatch(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	m, err := NewInquiryMetrics(store, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx, 50*time.Millisecond); close(done) }()
	eventually(t, 5*time.Second, "gauges refreshed", func() bool {
		return testutil.ToFloat64(m.byStatus.WithLabelValues("pending")) == 3 &&
			testutil.ToFloat64(m.byStatus.WithLabelValues("completed")) == 2
	})
	cancel()
	<-done
	// eventBody's pending inquiries expire 23h50m after the event.
	if got := testutil.ToFloat64(m.expiring.WithLabelValues("24h")); got != 3 {
		t.Errorf("expiring within 24h = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.expiring.WithLabelValues("1h")); got != 0 {
		t.Errorf("expiring within 1h = %v, want 0", got)
	}
}
