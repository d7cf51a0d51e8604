package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

type timingApplier struct {
	next Applier
	t    testing.TB
	last time.Time
}

func (a *timingApplier) ApplyBatch(ctx context.Context, evs []*persona.Event) ([]state.Result, error) {
	t0 := time.Now()
	gap := t0.Sub(a.last)
	r, err := a.next.ApplyBatch(ctx, evs)
	a.last = time.Now()
	a.t.Logf("batch %d: gap %v apply %v", len(evs), gap, a.last.Sub(t0))
	return r, err
}

func TestZZProbe(t *testing.T) {
	e := newEnv(t)
	for i := range 3000 {
		e.publishEvent(t, testEvent{ID: fmt.Sprintf("evt_p%d", i), Name: "inquiry.started", InquiryID: fmt.Sprintf("inq_p%d", i), Status: persona.StatusPending, At: testNow})
	}
	opts := e.options(&timingApplier{next: e.store, t: t, last: time.Now()})
	opts.Logger = nil
	start(t, opts)
	eventually(t, time.Minute, "done", func() bool {
		info, err := consumerInfo(e.js, e.stream)
		return err == nil && info.AckFloor.Stream == 3000
	})
}
