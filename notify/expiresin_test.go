package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
)

// TestReminderTellsTokenExpiryWhenEarlier: Persona's own example session token lives 24 hours
// from minting, not to the inquiry's expiry (PERSONA.md §6). An inquiry with a 7-day expiry
// reminded 6 hours before it gets a token that stops working after 1 hour: the e-mail tells
// the user the token's hour, the earlier of the two. With a token that outlives the inquiry
// (24 hours from minting), the inquiry's 6 hours are told, not the token's 24.
func TestReminderTellsTokenExpiryWhenEarlier(t *testing.T) {
	for _, tt := range []struct {
		name     string
		lifetime time.Duration
		want     string // TimeLeftInWords of what the e-mail must say
	}{
		{"token expires first", time.Hour, TimeLeftInWords(time.Hour)},
		{"inquiry expires first", 24 * time.Hour, TimeLeftInWords(6 * time.Hour)},
		{"token without a lifetime of its own", 0, TimeLeftInWords(6 * time.Hour)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newSchedEnv(t, func(o *personatest.Options) {
				o.AfterCreate, o.AfterStart = 7*24*time.Hour, 7*24*time.Hour
				o.SessionTokenLifetime = tt.lifetime
			})
			inq := e.pending(t, personatest.InquiryParams{EmailAddress: "jane@example.com"})
			e.clock.Add(7*24*time.Hour - 6*time.Hour) // the 6h stage is due
			e.sync(t)
			s := e.scheduler(t, nil, nil)
			if n := sweep(t, s); n != 1 {
				t.Fatalf("sweep handled %d claims, want 1", n)
			}
			msgs := e.mail.Messages()
			if len(msgs) != 1 {
				t.Fatalf("caught %d e-mails, want 1", len(msgs))
			}
			_, token := sessionLink(t, msgs[0])
			exp, err := persona.SessionTokenExpiry(token)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("token exp in %v, inquiry expires in %v", exp.Sub(e.clock.Now()), e.inquiry(t, inq.ID).ExpiresAt.Sub(e.clock.Now()))
			if !strings.Contains(msgs[0].TextBody, "expires in "+tt.want) {
				t.Errorf("e-mail does not say %q:\n%s", "expires in "+tt.want, msgs[0].TextBody)
			}
		})
	}
}
