package notify

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/mailcatch"
	"github.com/resumer/resumer/persona/personatest"
)

// TestSchedulerNoResendAfterUnansweredData: the SMTP server has the whole message (the end
// of data was sent) but its reply never reaches the sender: here the sender's time runs out
// while the server holds the reply, as it did under heavy CPU load in
// TestKillNotifyProcessMidSend. The message may well be delivered, so the stage must not be
// retried: it is settled as done, counted as uncertain, and a later sweep sends nothing.
// (It used to be released as a transient failure and sent again: the same reminder twice.)
// Deterministic: the sweep's context is cancelled once the catcher has the message, which
// aborts the wait for the reply exactly like the claim's deadline does.
func TestSchedulerNoResendAfterUnansweredData(t *testing.T) {
	e := newSchedEnv(t)
	slow := mailcatch.Start(t, mailcatch.Options{DataDelay: 10 * time.Second})
	email, err := NewEmailChannel(EmailOptions{URL: slow.URL(), From: schedFrom, Now: e.clock.Now, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	inq := e.pending(t, personatest.InquiryParams{EmailAddress: "jane@example.com"})
	e.clock.Add(23 * time.Hour)
	e.sync(t)
	s := e.scheduler(t, nil, func(o *SchedulerOptions) { o.Channels = []Channel{email} })

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		if _, err := slow.WaitFor(1, time.Minute); err == nil {
			cancel()
		}
	}()
	if n, err := s.Sweep(ctx); n != 1 {
		t.Fatalf("sweep handled %d claims (%v), want 1", n, err)
	}
	cancel()
	if n := len(slow.Messages()); n != 1 {
		t.Fatalf("%d e-mails caught, want 1 (the unanswered one)", n)
	}
	// Long past any retry and lease: a released claim would be sent again now.
	for range 3 {
		e.clock.Add(10 * time.Minute)
		sweep(t, s)
	}
	if n := messagesFor(slow.Messages(), inq.ID, "1h"); n != 1 {
		t.Errorf("the 1h reminder reached the server %d times, want 1", n)
	}
	if got := e.reminders(t, "1h", OutcomeUncertain); got != 1 {
		t.Errorf("uncertain = %v, want 1", got)
	}
	if got := e.inquiry(t, inq.ID).RemindersSent; fmt.Sprint(got) != "[6h 1h]" {
		t.Errorf("RemindersSent %v, want [6h 1h] (6h superseded)", got)
	}
}
