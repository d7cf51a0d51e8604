package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// E2EOptions size the end-to-end scenario.
type E2EOptions struct {
	// Events is the size of the burst (two events per inquiry).
	Events int
	// Concurrency is the number of webhook requests in flight.
	Concurrency int
	// Workers and BatchSize configure the workers applying the stream.
	Workers, BatchSize int
	// Timeout bounds the whole burst, from the first request to the last apply.
	Timeout time.Duration
	// Verify is the number of inquiries whose record is read back and checked field by
	// field (every inquiry is checked through the status counters).
	Verify int
}

// runE2E sends a burst of signed webhooks through the receiver while workers apply the
// stream, and measures the time until every event is applied to Redis; then it checks that
// none was lost.
func (e *env) runE2E(ctx context.Context, o E2EOptions) (*Table, error) {
	t := newTable("e2e", "a burst of signed webhooks: receiver → JetStream → worker → Redis",
		"events", "inquiries", "2xx", "retried", "all answered", "all applied", "rate", "applied", "lost", "dead-lettered")
	inquiries := (o.Events + 1) / 2
	e.log("e2e: generating %d event bodies", 2*inquiries)
	events := corpus(e.seed^0xE2E, inquiries, time.Now(), true)

	stream := e.streamName("e2e")
	if err := e.ensureStream(ctx, stream); err != nil {
		return t, err
	}
	defer e.deleteStream(stream)
	prefix := e.redisPrefix("e2e")
	defer e.cleanPrefix(prefix)
	store, err := e.newStore(prefix, nil)
	if err != nil {
		return t, err
	}
	ws, err := e.startWorkers(ctx, stream, "bench", o.Workers, o.BatchSize, store, len(events))
	if err != nil {
		return t, err
	}
	defer ws.close()
	rs, err := startReceiver(e.natsURL, stream, e.secret)
	if err != nil {
		return t, err
	}
	defer rs.close()
	poster, err := newWebhookPoster(rs.url, e.secret)
	if err != nil {
		return t, err
	}
	defer poster.close()

	e.log("e2e: sending %d events with %d in flight", len(events), o.Concurrency)
	var retried atomic.Int64
	start := time.Now()
	deadline := start.Add(o.Timeout)
	// Like Persona, retry a delivery that was not answered 200 (a few times, briefly).
	send := func(ctx context.Context, i int) error {
		var err error
		for attempt := range 5 {
			if attempt > 0 {
				retried.Add(1)
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
				}
			}
			if err = poster.post(ctx, events[i].Body); err == nil {
				return nil
			}
		}
		return err
	}
	res := closedLoop(ctx, o.Concurrency, len(events), o.Timeout, send)
	answered := time.Since(start)
	e.log("e2e: %d answered 200 in %s; waiting for the workers", res.OK, secs(answered))
	waitErr := ws.wait(ctx, max(time.Until(deadline), time.Second))
	applied := ws.applier.distinct()
	var all time.Duration
	if waitErr == nil {
		all = ws.applier.doneAt.Sub(start)
	}
	lost := len(events) - applied
	dead := ws.dlqMessages(ctx)

	// Check every inquiry through the status counters, and a sample record by record.
	var problems []string
	counts, err := store.CountByStatus(ctx)
	if err != nil {
		return t, err
	}
	if counts[persona.StatusPending] != int64(inquiries) || len(counts) != 1 {
		problems = append(problems, fmt.Sprintf("status counters %v, want pending=%d only", counts, inquiries))
	}
	if bad := verifyRecords(ctx, store, events, o.Verify); len(bad) > 0 {
		problems = append(problems, bad...)
	}

	allCell := "-"
	rateCell := "-"
	if waitErr == nil {
		allCell = secs(all)
		rateCell = rate(float64(len(events)) / all.Seconds())
		t.Metrics["all_applied_s"] = all.Seconds()
		t.Metrics["rate"] = float64(len(events)) / all.Seconds()
	}
	t.row(itoa(len(events)), itoa(inquiries), itoa(res.OK), itoa(int(retried.Load())), secs(answered), allCell, rateCell,
		itoa(applied), itoa(lost), fmt.Sprint(dead))
	t.Metrics["events"] = float64(len(events))
	t.Metrics["answered_s"] = answered.Seconds()
	t.Metrics["lost"] = float64(lost)
	t.Metrics["dead_lettered"] = float64(dead)
	t.Metrics["http_failed"] = float64(res.Failed)
	t.note("%d webhook requests in flight, %d worker(s) with batch %d; time from the first request to the apply of the last event", o.Concurrency, o.Workers, o.BatchSize)
	t.note("checked: every event id applied (%d distinct), status counters (%v), %d records read back field by field", applied, counts, min(o.Verify, inquiries))
	for _, p := range problems {
		t.note("PROBLEM: %s", p)
	}
	ok := waitErr == nil && lost == 0 && dead == 0 && res.Failed == 0 && len(problems) == 0
	got := fmt.Sprintf("%d of %d applied, %d lost, %d dead-lettered, %d requests failed", applied, len(events), lost, dead, res.Failed)
	if waitErr == nil {
		got += ", all in " + secs(all)
	} else {
		got += ": " + waitErr.Error()
	}
	t.target("burst of "+itoa(len(events)), "all applied, none lost", float64(lost), ok, got)
	return t, nil // a burst that did not complete is a missed target, not a harness failure
}

// verifyRecords reads back up to n inquiries of events (spread over the corpus) and checks
// that each is pending with the started event as its last event and the payload's fields;
// it returns what is wrong, at most 5 lines.
func verifyRecords(ctx context.Context, store *state.Store, events []generatedEvent, n int) []string {
	inquiries := len(events) / 2
	n = min(n, inquiries)
	if n == 0 {
		return nil
	}
	var mu sync.Mutex
	var bad []string
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= n {
					return
				}
				started := events[2*(k*inquiries/n)+1]
				f := started.facts
				rec, err := store.Inquiry(ctx, f.id)
				var why string
				switch {
				case err != nil:
					why = err.Error()
				case rec.Status != persona.StatusPending:
					why = "status " + string(rec.Status)
				case rec.LastEventID != started.ID:
					why = "last event " + rec.LastEventID + ", want " + started.ID
				case !rec.ExpiresAt.Equal(f.expiresAt) || rec.EmailAddress != f.email || rec.ReferenceID != f.referenceID:
					why = "fields differ from the payload"
				}
				if why != "" {
					mu.Lock()
					if len(bad) < 5 {
						bad = append(bad, fmt.Sprintf("inquiry %s: %s", f.id, why))
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return bad
}
