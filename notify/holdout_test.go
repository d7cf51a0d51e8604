package notify

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/resumer/resumer/brand"
	"github.com/resumer/resumer/persona/personatest"
)

// TestHoldoutShare checks that the hash holds out the configured share of ids, that it
// depends on the salt, and that 0 % and 100 % are exact.
func TestHoldoutShare(t *testing.T) {
	const n = 20000
	for _, pct := range []float64{0, 5, 12.5, 100} {
		h := Holdout{Percent: pct, Salt: "deploy-a"}
		other := Holdout{Percent: pct, Salt: "deploy-b"}
		held, differ := 0, 0
		for i := range n {
			id := fmt.Sprintf("inq_%024d", i)
			if h.HeldOut(id) {
				held++
			}
			if h.HeldOut(id) != other.HeldOut(id) {
				differ++
			}
			if h.HeldOut(id) != h.HeldOut(id) {
				t.Fatalf("HeldOut(%s) is not deterministic", id)
			}
		}
		share := float64(held) / n * 100
		// Binomial sd at 12.5 % of 20,000 is about 0.23 points: allow 5 sd.
		if math.Abs(share-pct) > 1.2 {
			t.Errorf("%v%%: held out %.2f%%", pct, share)
		}
		if (pct == 0 || pct == 100) && share != pct {
			t.Errorf("%v%%: held out %.2f%%, want exactly", pct, share)
		}
		if pct > 0 && pct < 100 && differ == 0 {
			t.Errorf("%v%%: another salt holds out the same ids", pct)
		}
	}
	for _, bad := range []Holdout{{Percent: -1, Salt: "x"}, {Percent: 101, Salt: "x"}, {Percent: 5}, {Percent: math.NaN(), Salt: "x"}} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v): no error", bad)
		}
	}
}

// TestSchedulerHoldout: a held-out inquiry is claimed like any other, but gets no e-mail and
// no session token; its stage is done, counted held_out, and recorded in the funnel's
// held-out group, while a reminded one is recorded in the reminded group; both under the
// brand their inquiry gets.
func TestSchedulerHoldout(t *testing.T) {
	e := newSchedEnv(t)
	held := Holdout{Percent: 50, Salt: "test-salt"}
	var in, out string
	var nIn, nOut int64
	for i := 0; in == "" || out == ""; i++ {
		inq := e.pending(t, personatest.InquiryParams{ReferenceID: fmt.Sprint("user-", i), EmailAddress: "jane@example.com"})
		if held.HeldOut(inq.ID) {
			nIn++
			in = inq.ID
		} else {
			nOut++
			out = inq.ID
		}
		if i > 100 {
			t.Fatal("no inquiry on each side of a 50 % holdout in 100")
		}
	}
	e.clock.Add(18 * time.Hour)
	e.sync(t)
	brands, err := brand.New([]brand.Brand{{ID: "acme", Name: "Acme", ReferencePrefixes: []string{"user"}}}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := e.scheduler(t, nil, func(o *SchedulerOptions) { o.Holdout = held; o.Brands = brands })
	sweep(t, s)
	if got := messagesFor(e.mail.Messages(), in, "6h"); got != 0 {
		t.Errorf("held-out inquiry got %d e-mails", got)
	}
	if got := messagesFor(e.mail.Messages(), out, "6h"); got != 1 {
		t.Errorf("reminded inquiry got %d e-mails, want 1", got)
	}
	if e.resumeCalls(in) != 0 {
		t.Errorf("held-out inquiry: %d session tokens minted, want 0", e.resumeCalls(in))
	}
	if got := e.inquiry(t, in).RemindersSent; len(got) != 1 || got[0] != "6h" {
		t.Errorf("held-out RemindersSent = %v, want [6h]", got)
	}
	if got := e.reminders(t, "6h", OutcomeHeldOut); got != float64(nIn) {
		t.Errorf("reminders{6h,held_out} = %v, want %d", got, nIn)
	}
	if got := e.reminders(t, "6h", OutcomeSent); got != float64(nOut) {
		t.Errorf("reminders{6h,sent} = %v, want %d", got, nOut)
	}
	d, err := e.store.Funnel(context.Background(), e.clock.Now(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, c := range d.Counts {
		got[c.Attribution.String()+" "+c.Step] += c.Count
	}
	want := map[string]int64{
		"held_out|6h|email|session-token|acme reminder": nIn, "held_out|6h|email|session-token|acme inquiry": nIn,
		"reminded|6h|email|session-token|acme reminder": nOut, "reminded|6h|email|session-token|acme inquiry": nOut,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("funnel = %v, want %v", got, want)
	}
}
