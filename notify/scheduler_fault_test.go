package notify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/state"
)

// TestSchedulerReplicasSendOnce: three schedulers, each with its own Store and Redis client,
// sweep 1,000 due inquiries concurrently; every inquiry gets exactly one e-mail (DESIGN.md
// decision 5), told apart by Message-ID at the catcher.
func TestSchedulerReplicasSendOnce(t *testing.T) {
	const count = 1000
	e := newSchedEnv(t)
	ids := make([]string, count)
	for i := range ids {
		ids[i] = e.pending(t, personatest.InquiryParams{EmailAddress: fmt.Sprintf("user%d@example.com", i)}).ID
	}
	e.clock.Add(23 * time.Hour)
	e.sync(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	scheds := make([]*Scheduler, 3)
	regs := make([]*prometheus.Registry, len(scheds))
	for i := range scheds {
		regs[i] = prometheus.NewRegistry()
		scheds[i] = e.scheduler(t, e.replicaStore(t), func(o *SchedulerOptions) {
			o.Interval = 5 * time.Millisecond
			o.ClaimLimit = 10 // small batches, so the replicas' sweeps interleave
			o.Registerer = regs[i]
		})
		wg.Go(func() { scheds[i].Run(ctx) })
	}
	msgs, err := e.mail.WaitFor(count, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let a duplicate, if any, arrive
	cancel()
	wg.Wait()
	for _, s := range scheds {
		sweep(t, s)
	}

	msgs = e.mail.Messages()
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.MessageID]++
	}
	if len(msgs) != count || len(seen) != count {
		t.Errorf("caught %d e-mails with %d distinct Message-IDs, want %d of each", len(msgs), len(seen), count)
	}
	for _, id := range ids {
		if n := seen[MessageID(id, "1h", "acme.example")]; n != 1 {
			t.Errorf("inquiry %s got the 1h reminder %d times", id, n)
		}
	}
	total, busy := 0.0, 0
	for i, reg := range regs {
		got := metricIn(t, reg, "resumer_reminders_total", "stage", "1h", "channel", "email", "outcome", OutcomeSent)
		t.Logf("replica %d sent %v", i, got)
		total += got
		if got > 0 {
			busy++
		}
	}
	if total != count || busy < 2 {
		t.Errorf("replicas sent %v reminders, %d of them busy; want %d from at least 2", total, busy, count)
	}
	if n, err := e.store.DueBacklog(context.Background(), e.clock.Now()); err != nil || n != 0 {
		t.Errorf("DueBacklog = %d, %v; want 0", n, err)
	}
}

// TestSchedulerTransientFailures: Persona 429 bursts and an SMTP outage delay reminders but
// lose none and duplicate none.
func TestSchedulerTransientFailures(t *testing.T) {
	const count = 5
	e := newSchedEnv(t)
	ids := make([]string, count)
	for i := range ids {
		ids[i] = e.pending(t, personatest.InquiryParams{EmailAddress: fmt.Sprintf("user%d@example.com", i)}).ID
	}
	e.clock.Add(23 * time.Hour)
	e.sync(t)
	s := e.scheduler(t, nil, nil)

	e.sim.FailNext(4, http.StatusTooManyRequests)
	sweep(t, s)
	if got := len(e.mail.Messages()); got >= count {
		t.Fatalf("%d e-mails despite the 429 burst", got)
	}
	e.mail.FailNext(3)
	rounds := 0
	for ; rounds < 20 && len(e.mail.Messages()) < count; rounds++ {
		if rounds == 1 {
			e.sim.FailNext(2, http.StatusTooManyRequests) // a second burst, for the SMTP retries
		}
		e.clock.Add(2 * time.Minute)
		sweep(t, s)
	}
	for range 3 {
		e.clock.Add(2 * time.Minute)
		sweep(t, s)
	}
	msgs := e.mail.Messages()
	if len(msgs) != count {
		t.Fatalf("%d e-mails after %d rounds, want %d", len(msgs), rounds, count)
	}
	for _, id := range ids {
		if n := messagesFor(msgs, id, "1h"); n != 1 {
			t.Errorf("inquiry %s got %d reminders, want 1", id, n)
		}
		if got := e.inquiry(t, id).RemindersSent; len(got) != 2 {
			t.Errorf("inquiry %s: RemindersSent %v, want [6h 1h]", id, got)
		}
	}
	if got := e.reminders(t, "1h", OutcomeSent); got != count {
		t.Errorf("reminders sent = %v, want %d", got, count)
	}
	// Every reminder resumed once when it went out, once per 429 (six) and once per SMTP
	// failure (three, each retried with a fresh resume that reuses the session).
	resumes := 0
	for _, id := range ids {
		resumes += e.resumeCalls(id)
	}
	if resumes < count+6+3 {
		t.Errorf("%d resume calls, want at least %d: the injected failures were not all met", resumes, count+6+3)
	}
	if got := e.reminders(t, "1h", OutcomeFailed); got != 0 {
		t.Errorf("reminders failed = %v, want 0", got)
	}
}

// TestSchedulerChannelsTrackedApart: with e-mail and webhook channels, a webhook outage is
// retried alone: the e-mail that went out is not sent again.
func TestSchedulerChannelsTrackedApart(t *testing.T) {
	e := newSchedEnv(t)
	inq := e.pending(t, personatest.InquiryParams{EmailAddress: "jane@example.com"})
	e.clock.Add(23 * time.Hour)
	e.sync(t)
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	wh, err := NewWebhookChannel(WebhookOptions{URL: hook.URL, Secret: "test-secret", Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	s := e.scheduler(t, nil, func(o *SchedulerOptions) { o.Channels = []Channel{e.email, wh} })
	for range 5 {
		sweep(t, s)
		e.clock.Add(3 * time.Minute)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("webhook called %d times, want 3 (two 503s, then 204)", n)
	}
	if n := messagesFor(e.mail.Messages(), inq.ID, "1h"); n != 1 || len(e.mail.Messages()) != 1 {
		t.Errorf("%d e-mails, want the 1h reminder once", len(e.mail.Messages()))
	}
	if got := e.inquiry(t, inq.ID).RemindersSent; len(got) != 2 || got[0] != "6h" || got[1] != "1h" {
		t.Errorf("RemindersSent = %v, want [6h 1h] (channel marks gone)", got)
	}
	if got := e.metric(t, "resumer_reminders_total", "stage", "1h", "channel", "webhook", "outcome", OutcomeSent); got != 1 {
		t.Errorf("webhook sent = %v, want 1", got)
	}
	if got := e.reminders(t, "1h", OutcomeSent); got != 1 {
		t.Errorf("e-mail sent = %v, want 1", got)
	}
}

// TestSchedulerRedisDown: a sweep against an unreachable Redis returns the error (and the next
// one, with Redis back, works).
func TestSchedulerRedisDown(t *testing.T) {
	e := newSchedEnv(t)
	srv := testenv.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { client.Close() })
	store, err := state.New(client, state.Config{Prefix: e.prefix, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	s := e.scheduler(t, store, nil)
	srv.Stop()
	if _, err := s.Sweep(context.Background()); err == nil {
		t.Error("Sweep with Redis down returned no error")
	}
	srv.Restart(t)
	if _, err := s.Sweep(context.Background()); err != nil {
		t.Errorf("Sweep with Redis back: %v", err)
	}
}
