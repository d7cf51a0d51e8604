package notify

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona/personatest"
)

// hookChannel is a Channel that runs after once, after the first Send of the channel it wraps
// returned: the moment a reminder has been handed over and not yet settled.
type hookChannel struct {
	Channel
	once  sync.Once
	after func()
}

func (h *hookChannel) Send(ctx context.Context, r *Reminder) (bool, error) {
	retry, err := h.Channel.Send(ctx, r)
	h.once.Do(h.after)
	return retry, err
}

// outageEnv is a schedEnv whose store lives on a redis-server of its own (append-only file
// synced on every write), reached by a client that fails fast: no retries, short timeouts.
type outageEnv struct {
	*schedEnv
	srv *testenv.RedisServer
}

func newOutageEnv(t *testing.T) *outageEnv {
	t.Helper()
	e := newSchedEnv(t)
	srv := testenv.StartRedisAOF(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1,
		DialTimeout: 300 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { client.Close() })
	e.store = e.newStore(t, client)
	return &outageEnv{schedEnv: e, srv: srv}
}

// wantOnce fails the test unless every inquiry in ids got the stage's e-mail exactly once.
func (e *outageEnv) wantOnce(t *testing.T, ids []string, stage string) {
	t.Helper()
	msgs := e.mail.Messages()
	for _, id := range ids {
		if n := messagesFor(msgs, id, stage); n != 1 {
			t.Errorf("inquiry %s got the %s reminder %d times, want exactly once", id, stage, n)
		}
	}
}

// TestSchedulerRedisRestartDuringResume: Redis is stopped for 3 s while the resume calls of
// three reminders are in flight (the simulator delays them), then started again from its
// append-only file. The holders record their send intents once Redis is back, send and
// settle: every stage goes out exactly once, none is lost, none is uncertain.
func TestSchedulerRedisRestartDuringResume(t *testing.T) {
	e := newOutageEnv(t)
	ids := make([]string, 3)
	for i := range ids {
		ids[i] = e.pending(t, personatest.InquiryParams{EmailAddress: fmt.Sprintf("user%d@example.com", i)}).ID
	}
	e.clock.Add(18 * time.Hour) // the 6h stage is due
	e.sync(t)
	s := e.scheduler(t, nil, func(o *SchedulerOptions) { o.Lease = 30 * time.Second })

	e.sim.Delay(1500 * time.Millisecond)
	done := make(chan error, 1)
	go func() { _, err := s.Sweep(context.Background()); done <- err }()
	waitFor(t, "a resume call in flight", func() bool { return e.resumeCalls(ids[0])+e.resumeCalls(ids[1])+e.resumeCalls(ids[2]) > 0 })
	e.srv.Stop()
	time.Sleep(3 * time.Second)
	e.srv.Restart(t)
	e.sim.Delay(0)
	select {
	case err := <-done:
		// A claim attempted while Redis was down fails (and is logged); the claims in
		// flight must not.
		t.Logf("sweep across the restart: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("sweep across the restart did not end")
	}
	e.clock.Add(time.Minute) // past the lease: a claim left unsettled would be taken over now
	sweep(t, s)
	e.wantOnce(t, ids, "6h")

	e.clock.Add(5 * time.Hour) // the 1h stage
	sweep(t, s)
	e.wantOnce(t, ids, "1h")
	if n := len(e.mail.Messages()); n != 2*len(ids) {
		t.Errorf("%d e-mails, want %d", n, 2*len(ids))
	}
	for _, id := range ids {
		if got := e.inquiry(t, id).RemindersSent; fmt.Sprint(got) != "[6h 1h]" {
			t.Errorf("inquiry %s: RemindersSent %v, want [6h 1h]", id, got)
		}
	}
	if got := e.reminders(t, "6h", OutcomeUncertain) + e.reminders(t, "1h", OutcomeUncertain); got != 0 {
		t.Errorf("uncertain = %v, want 0", got)
	}
	if got := e.metric(t, "resumer_reminder_lease_expiries_total"); got != 0 {
		t.Errorf("lease expiries = %v, want 0", got)
	}
}

// TestSchedulerRedisRefusedWhileSettling: right after the e-mail is handed over, Redis goes
// away for 10 s (connections refused, the client failing fast). The settle is retried with
// backoff until Redis is back, well within the lease: the stage is recorded as sent and is
// not sent again.
func TestSchedulerRedisRefusedWhileSettling(t *testing.T) {
	e := newOutageEnv(t)
	inq := e.pending(t, personatest.InquiryParams{EmailAddress: "jane@example.com"})
	e.clock.Add(23 * time.Hour)
	e.sync(t)
	back := make(chan struct{})
	ch := &hookChannel{Channel: e.email, after: func() {
		e.srv.Stop()
		go func() {
			time.Sleep(10 * time.Second)
			e.srv.Restart(t)
			close(back)
		}()
	}}
	s := e.scheduler(t, nil, func(o *SchedulerOptions) {
		o.Lease = 40 * time.Second
		o.Channels = []Channel{ch}
	})
	// The sweep may try to claim more while Redis is away: that error is expected.
	if n, err := s.Sweep(context.Background()); n != 1 {
		t.Fatalf("sweep handled %d claims (%v), want 1", n, err)
	}
	<-back
	e.clock.Add(time.Hour) // past any lease: a takeover would happen now
	sweep(t, s)
	e.wantOnce(t, []string{inq.ID}, "1h")
	if got := e.inquiry(t, inq.ID).RemindersSent; fmt.Sprint(got) != "[6h 1h]" {
		t.Errorf("RemindersSent %v, want [6h 1h]", got)
	}
	if got := e.reminders(t, "1h", OutcomeSent); got != 1 {
		t.Errorf("sent = %v, want 1", got)
	}
}

// TestSchedulerUncertainAfterLostSettle: Redis stays away longer than the lease after the
// e-mail went out, so the holder gives up settling. The replica that takes the lease over
// finds the send intent and settles the stage as uncertain: counted, never sent twice.
func TestSchedulerUncertainAfterLostSettle(t *testing.T) {
	e := newOutageEnv(t)
	inq := e.pending(t, personatest.InquiryParams{EmailAddress: "jane@example.com"})
	e.clock.Add(23 * time.Hour)
	e.sync(t)
	ch := &hookChannel{Channel: e.email, after: e.srv.Stop}
	const lease = 3 * time.Second
	holder := e.scheduler(t, nil, func(o *SchedulerOptions) {
		o.Lease = lease
		o.Channels = []Channel{ch}
	})
	if _, err := holder.Sweep(context.Background()); err == nil {
		t.Error("sweep whose settle never reached Redis returned no error")
	}
	e.srv.Restart(t)
	other := e.scheduler(t, nil, func(o *SchedulerOptions) { o.Lease = lease })
	e.clock.Add(lease) // the holder's lease runs out (on Redis's clock, moved with the test's)
	if n := sweep(t, other); n != 1 {
		t.Fatalf("takeover sweep handled %d claims, want 1", n)
	}
	e.clock.Add(time.Hour)
	sweep(t, other)
	if n := len(e.mail.Messages()); n != 1 {
		t.Errorf("%d e-mails, want the one sent before the outage", n)
	}
	if got := e.reminders(t, "1h", OutcomeUncertain); got != 1 {
		t.Errorf("uncertain = %v, want 1", got)
	}
	if got := e.metric(t, "resumer_reminder_lease_expiries_total"); got != 1 {
		t.Errorf("lease expiries = %v, want 1", got)
	}
	// The 6h stage was superseded by the 1h one; with 1h done it is never due again.
	if got := e.inquiry(t, inq.ID).RemindersSent; fmt.Sprint(got) != "[1h]" {
		t.Errorf("RemindersSent %v, want [1h]", got)
	}
}

// waitFor polls cond every 10 ms for up to a minute and fails the test when it stays false.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
