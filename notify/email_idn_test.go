package notify

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/mailcatch"
	"github.com/resumer/resumer/persona/personatest"
)

// rawHeader returns the header section of a raw message.
func rawHeader(raw []byte) string {
	h, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	return h
}

// eightBit reports whether s has a byte outside 7-bit ASCII.
func eightBit(s string) bool { return !isASCII(s) }

// TestEmailInternationalAddresses: an IDN domain always goes out as punycode; a non-ASCII
// local part goes out only to a server that advertises SMTPUTF8 (with the SMTPUTF8 MAIL
// parameter), otherwise the send fails for good with ErrUndeliverable before any RCPT TO.
// Nothing goes out as raw 8-bit in RCPT TO or To: to a server without SMTPUTF8.
func TestEmailInternationalAddresses(t *testing.T) {
	tests := []struct {
		name         string
		address      string
		smtputf8     bool
		wantRcpt     string // "" when nothing may be sent
		wantSMTPUTF8 bool
	}{
		{"ascii", "jane@example.org", false, "jane@example.org", false},
		{"idn domain", "jane@bücher.example", false, "jane@xn--bcher-kva.example", false},
		{"idn domain, smtputf8 server", "jane@bücher.example", true, "jane@xn--bcher-kva.example", true},
		{"non-ascii local part, smtputf8 server", "josé@bücher.example", true, "josé@xn--bcher-kva.example", true},
		{"non-ascii local part, plain server", "josé@example.org", false, "", false},
		{"non-ascii local part and idn, plain server", "用户@例子.example", false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mailcatch.Start(t, mailcatch.Options{SMTPUTF8: tt.smtputf8})
			reg := prometheus.NewRegistry()
			ch := newTestEmail(t, c, func(o *EmailOptions) { o.Registerer = reg })
			r := testReminder(NewStage(6*time.Hour), "José")
			r.EmailAddress = tt.address
			retry, err := ch.Send(context.Background(), r)
			if tt.wantRcpt == "" {
				if !errors.Is(err, ErrUndeliverable) || retry {
					t.Fatalf("Send = %v, retry %v; want ErrUndeliverable, no retry", err, retry)
				}
				local, _, _ := strings.Cut(tt.address, "@")
				if strings.Contains(err.Error(), local) {
					t.Errorf("error %q contains the address", err)
				}
				if n := len(c.Messages()); n != 0 {
					t.Errorf("%d messages caught, want none", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := c.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages caught, want 1", len(msgs))
			}
			m := msgs[0]
			if !slices.Equal(m.To, []string{tt.wantRcpt}) || m.SMTPUTF8 != tt.wantSMTPUTF8 {
				t.Errorf("RCPT TO %q, SMTPUTF8 %v; want %q, %v", m.To, m.SMTPUTF8, tt.wantRcpt, tt.wantSMTPUTF8)
			}
			if !strings.Contains(m.Header.Get("To"), tt.wantRcpt) {
				t.Errorf("To: %q, want %s", m.Header.Get("To"), tt.wantRcpt)
			}
			if !m.SMTPUTF8 && eightBit(rawHeader(m.Raw)) {
				t.Errorf("8-bit header without SMTPUTF8:\n%s", rawHeader(m.Raw))
			}
		})
	}
}

// TestSchedulerCountsUndeliverable: a reminder to a non-ASCII local part, with a server that
// does not advertise SMTPUTF8, ends the stage with the undeliverable outcome, once, and is
// never retried.
func TestSchedulerCountsUndeliverable(t *testing.T) {
	e := newSchedEnv(t)
	inq := e.pending(t, personatest.InquiryParams{EmailAddress: "josé@example.com"})
	e.clock.Add(23 * time.Hour)
	e.sync(t)
	s := e.scheduler(t, nil, nil)
	if n := sweep(t, s); n != 1 {
		t.Fatalf("first sweep handled %d claims, want 1", n)
	}
	for range 3 {
		e.clock.Add(10 * time.Minute)
		sweep(t, s)
	}
	if n := len(e.mail.Messages()); n != 0 {
		t.Errorf("%d e-mails caught, want none", n)
	}
	if got := e.reminders(t, "1h", OutcomeUndeliverable); got != 1 {
		t.Errorf("reminders{stage=1h,outcome=undeliverable} = %v, want 1", got)
	}
	if got := e.reminders(t, "1h", OutcomeFailed); got != 0 {
		t.Errorf("reminders{stage=1h,outcome=failed} = %v, want 0", got)
	}
	if got := e.inquiry(t, inq.ID).RemindersSent; !slices.Contains(got, "1h") {
		t.Errorf("RemindersSent = %v: the stage did not end", got)
	}
}
