package notify

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/state"
)

// TestSchedulerSendsClosestStageOnce: an inquiry started 23 h ago (expiring in 1 h) gets the
// 1h reminder once and the 6h stage is marked skipped; the link's session token works at
// the simulator for that inquiry and expires with it (PERSONA.md §6).
func TestSchedulerSendsClosestStageOnce(t *testing.T) {
	e := newSchedEnv(t)
	inq := e.pending(t, personatest.InquiryParams{ReferenceID: "user-1", EmailAddress: "jane@example.com", NameFirst: "Jane"})
	e.clock.Add(23 * time.Hour)
	e.sync(t)
	s := e.scheduler(t, nil, nil)

	if n := sweep(t, s); n != 1 {
		t.Fatalf("first sweep handled %d claims, want 1", n)
	}
	for range 3 {
		e.clock.Add(10 * time.Minute)
		if n := sweep(t, s); n != 0 {
			t.Errorf("later sweep handled %d claims, want 0", n)
		}
	}
	msgs := e.mail.Messages()
	if len(msgs) != 1 {
		t.Fatalf("caught %d e-mails, want 1", len(msgs))
	}
	m := msgs[0]
	if messagesFor(msgs, inq.ID, "1h") != 1 || !slices.Equal(m.To, []string{"jane@example.com"}) {
		t.Errorf("e-mail Message-ID %s to %v, want the 1h reminder to jane@example.com", m.MessageID, m.To)
	}
	id, token := sessionLink(t, m)
	if id != inq.ID || !e.sim.ValidSession(inq.ID, token) {
		t.Errorf("link for %s with a token the simulator does not accept for %s", id, inq.ID)
	}
	x := e.inquiry(t, inq.ID).ExpiresAt
	if exp, err := persona.SessionTokenExpiry(token); err != nil || !exp.Equal(x) {
		t.Errorf("session token expires %v (%v), want the inquiry's expires-at %v", exp, err, x)
	}
	if got := e.inquiry(t, inq.ID).RemindersSent; !slices.Equal(got, []string{"6h", "1h"}) {
		t.Errorf("RemindersSent = %v, want [6h 1h]", got)
	}
	if e.resumeCalls(inq.ID) != 1 {
		t.Errorf("%d resume calls, want 1", e.resumeCalls(inq.ID))
	}
	for _, c := range []struct {
		stage, outcome string
		want           float64
	}{
		{"1h", OutcomeSent, 1}, {"6h", OutcomeSkippedTooLate, 1}, {"1h", OutcomeSkippedTooLate, 0}, {"6h", OutcomeSent, 0},
	} {
		if got := e.reminders(t, c.stage, c.outcome); got != c.want {
			t.Errorf("reminders{stage=%s,outcome=%s} = %v, want %v", c.stage, c.outcome, got, c.want)
		}
	}
	if got := e.metric(t, "resumer_reminder_delay_seconds"); got != 1 {
		t.Errorf("delay histogram has %v samples, want 1", got)
	}
	if got := e.metric(t, "resumer_notify_sweep_duration_seconds"); got != 4 {
		t.Errorf("sweep duration histogram has %v samples, want 4", got)
	}
}

// TestSchedulerReschedulesOnNewExpiry: the 6h stage goes out on time; Persona then extends the
// inquiry, so the 1h stage follows the new expires-at; replayed and re-sent events never
// make a stage go out twice.
func TestSchedulerReschedulesOnNewExpiry(t *testing.T) {
	e := newSchedEnv(t)
	inq := e.pending(t, personatest.InquiryParams{EmailAddress: "jane@example.com"})
	e.sync(t)
	s := e.scheduler(t, nil, nil)
	x := schedT0.Add(24 * time.Hour)

	e.clock.Set(x.Add(-6*time.Hour - time.Second))
	sweep(t, s)
	if n := len(e.mail.Messages()); n != 0 {
		t.Fatalf("%d e-mails a second before the 6h stage", n)
	}
	e.clock.Set(x.Add(-6 * time.Hour))
	sweep(t, s)
	if n := messagesFor(e.mail.Messages(), inq.ID, "6h"); n != 1 {
		t.Fatalf("%d 6h reminders, want 1", n)
	}

	// Persona extends the inquiry by 6 h; the event carries the new expires-at.
	x2 := x.Add(6 * time.Hour)
	if err := e.sim.SetExpiresAt(inq.ID, x2); err != nil {
		t.Fatal(err)
	}
	snap, _ := e.sim.Inquiry(inq.ID)
	ext := &persona.Event{ID: "evt_extended", Name: "inquiry.transitioned", CreatedAt: e.clock.Now(),
		InquiryID: inq.ID, PayloadType: "inquiry", Inquiry: snap}
	if _, err := e.store.ApplyBatch(context.Background(), []*persona.Event{ext}); err != nil {
		t.Fatal(err)
	}

	e.clock.Set(x.Add(-time.Hour)) // the old 1h stage: nothing now
	sweep(t, s)
	e.clock.Set(x2.Add(-6 * time.Hour)) // the 6h stage of the new expiry: already sent
	sweep(t, s)
	if n := len(e.mail.Messages()); n != 1 {
		t.Fatalf("%d e-mails before the new 1h stage, want 1", n)
	}
	e.clock.Set(x2.Add(-time.Hour))
	sweep(t, s)
	if n := messagesFor(e.mail.Messages(), inq.ID, "1h"); n != 1 {
		t.Fatalf("%d 1h reminders, want 1", n)
	}

	// Every event again (duplicates), the extension under a fresh event id, and the started
	// event under a fresh id (its older expires-at loses): nothing goes out again.
	e.apply(t, e.sim.Events())
	again := *ext
	again.ID = "evt_extended_again"
	if _, err := e.store.ApplyBatch(context.Background(), []*persona.Event{&again}); err != nil {
		t.Fatal(err)
	}
	for _, ev := range e.sim.Events() {
		if ev.Name == "inquiry.started" {
			body := strings.Replace(string(ev.Body), ev.ID, ev.ID+"_replayed", 1)
			e.apply(t, []personatest.Event{{ID: ev.ID + "_replayed", Body: []byte(body)}})
		}
	}
	for range 3 {
		sweep(t, s)
		e.clock.Add(5 * time.Minute)
	}
	if n := len(e.mail.Messages()); n != 2 {
		t.Errorf("%d e-mails in all, want 2", n)
	}
	if got := e.inquiry(t, inq.ID).RemindersSent; !slices.Equal(got, []string{"6h", "1h"}) {
		t.Errorf("RemindersSent = %v, want [6h 1h]", got)
	}
}

// TestSchedulerSendsNothing covers the inquiries that must get no reminder.
func TestSchedulerSendsNothing(t *testing.T) {
	x := schedT0.Add(24 * time.Hour)
	tests := []struct {
		name string
		// setup runs at schedT0 on the simulator after the inquiry started and returns the
		// time of the sweeps; its events are applied unless it says not to.
		setup   func(t *testing.T, e *schedEnv, id string) (sweepAt []time.Time, sync bool)
		email   string
		outcome map[string]string // stage -> outcome counted for the e-mail channel
	}{{
		name:  "completed just before the due time",
		email: "jane@example.com",
		setup: func(t *testing.T, e *schedEnv, id string) ([]time.Time, bool) {
			e.clock.Set(x.Add(-6*time.Hour - time.Second))
			if err := e.sim.Complete(id); err != nil {
				t.Fatal(err)
			}
			return []time.Time{x.Add(-6 * time.Hour), x.Add(-time.Hour)}, true
		},
	}, {
		name:  "expired",
		email: "jane@example.com",
		setup: func(t *testing.T, e *schedEnv, id string) ([]time.Time, bool) {
			e.clock.Set(schedT0.Add(2 * time.Hour))
			if err := e.sim.Expire(id); err != nil {
				t.Fatal(err)
			}
			return []time.Time{x.Add(-6 * time.Hour), x.Add(-time.Hour), x.Add(time.Hour)}, true
		},
	}, {
		name:  "expiry passed without its event",
		email: "jane@example.com",
		setup: func(t *testing.T, e *schedEnv, id string) ([]time.Time, bool) {
			return []time.Time{x.Add(time.Minute), x.Add(time.Hour)}, true
		},
		outcome: map[string]string{"6h": OutcomeSkippedTooLate, "1h": OutcomeSkippedTooLate},
	}, {
		name: "no e-mail address",
		setup: func(t *testing.T, e *schedEnv, id string) ([]time.Time, bool) {
			return []time.Time{x.Add(-time.Hour), x.Add(-30 * time.Minute)}, true
		},
		outcome: map[string]string{"6h": OutcomeSkippedTooLate, "1h": OutcomeNoContact},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSchedEnv(t)
			inq := e.pending(t, personatest.InquiryParams{EmailAddress: tt.email})
			e.sync(t)
			s := e.scheduler(t, nil, nil)
			at, doSync := tt.setup(t, e, inq.ID)
			if doSync {
				e.sync(t)
			}
			for _, when := range at {
				e.clock.Set(when)
				sweep(t, s)
			}
			if n := len(e.mail.Messages()); n != 0 {
				t.Errorf("%d e-mails, want none", n)
			}
			if n := e.resumeCalls(inq.ID); n != 0 {
				t.Errorf("%d resume calls, want none (no token without a reminder to send)", n)
			}
			for _, stage := range []string{"6h", "1h"} {
				for _, o := range outcomes {
					want := 0.0
					if tt.outcome[stage] == o {
						want = 1
					}
					if got := e.reminders(t, stage, o); got != want {
						t.Errorf("reminders{stage=%s,outcome=%s} = %v, want %v", stage, o, got, want)
					}
				}
			}
		})
	}
}

// TestSchedulerLeaseTakeover: a replica that claims and dies leaves the reminder to the lease;
// after it runs out another scheduler sends it, once.
func TestSchedulerLeaseTakeover(t *testing.T) {
	e := newSchedEnv(t)
	inq := e.pending(t, personatest.InquiryParams{EmailAddress: "jane@example.com"})
	e.clock.Add(23 * time.Hour)
	e.sync(t)

	dead := e.replicaStore(t)
	claims, err := dead.ClaimDue(context.Background(), e.clock.Now(), DefaultLease, 100)
	if err != nil || len(claims) != 1 {
		t.Fatalf("ClaimDue = %d claims, %v", len(claims), err)
	}
	s := e.scheduler(t, nil, nil)
	// Leases run on Redis's clock, which moves with the test's clock and with real time: a
	// margin of 30 s keeps the first sweep within the lease however slow the machine.
	e.clock.Add(DefaultLease - 30*time.Second)
	if n := sweep(t, s); n != 0 || len(e.mail.Messages()) != 0 {
		t.Fatalf("within the lease: %d claims, %d e-mails; want none", n, len(e.mail.Messages()))
	}
	e.clock.Add(30 * time.Second)
	if n := sweep(t, s); n != 1 {
		t.Fatalf("after the lease: %d claims, want 1", n)
	}
	e.clock.Add(DefaultLease)
	sweep(t, s)
	if n := messagesFor(e.mail.Messages(), inq.ID, "1h"); n != 1 || len(e.mail.Messages()) != 1 {
		t.Errorf("%d e-mails, want the 1h reminder once", len(e.mail.Messages()))
	}
	if got := e.metric(t, "resumer_reminder_lease_expiries_total"); got != 1 {
		t.Errorf("lease expiries = %v, want 1", got)
	}
	// The dead replica's token no longer settles anything.
	if err := dead.CompleteReminder(context.Background(), claims[0], "1h", nil); err == nil {
		t.Error("the dead replica's claim still settles")
	}
}

// TestSchedulerPersonaConflict: the inquiry completed at Persona but its event has not arrived;
// resume answers 409 (PERSONA.md §6) and the reminders end without retries.
func TestSchedulerPersonaConflict(t *testing.T) {
	e := newSchedEnv(t)
	inq := e.pending(t, personatest.InquiryParams{EmailAddress: "jane@example.com"})
	e.clock.Add(23 * time.Hour)
	e.sync(t)
	if err := e.sim.Complete(inq.ID); err != nil { // not applied
		t.Fatal(err)
	}
	s := e.scheduler(t, nil, nil)
	for range 5 {
		sweep(t, s)
		e.clock.Add(5 * time.Minute)
	}
	if n := len(e.mail.Messages()); n != 0 {
		t.Errorf("%d e-mails, want none", n)
	}
	if n := e.resumeCalls(inq.ID); n != 1 {
		t.Errorf("%d resume calls, want 1 (409 is final)", n)
	}
	if got := e.reminders(t, "1h", OutcomeNotResumable); got != 1 {
		t.Errorf("not_resumable = %v, want 1", got)
	}
	if got := e.inquiry(t, inq.ID).RemindersDropped; got != OutcomeNotResumable {
		t.Errorf("RemindersDropped = %q", got)
	}
	if n, err := e.store.DueBacklog(context.Background(), e.clock.Now().Add(48*time.Hour)); err != nil || n != 0 {
		t.Errorf("DueBacklog = %d, %v; want the inquiry out of the schedule", n, err)
	}
}

// TestSchedulerLinkModes checks the one-time-link and redirect modes end to end.
func TestSchedulerLinkModes(t *testing.T) {
	signer := &link.Signer{Secret: []byte(strings.Repeat("k", link.MinSecretLen)), PublicURL: "https://resume.example.com"}
	t.Run("redirect", func(t *testing.T) {
		e := newSchedEnv(t)
		inq := e.pending(t, personatest.InquiryParams{EmailAddress: "jane@example.com"})
		e.clock.Add(23 * time.Hour)
		e.sync(t)
		s := e.scheduler(t, nil, func(o *SchedulerOptions) { o.LinkMode, o.Redirect, o.Persona = LinkRedirect, signer, nil })
		sweep(t, s)
		msgs := e.mail.Messages()
		if len(msgs) != 1 {
			t.Fatalf("%d e-mails, want 1", len(msgs))
		}
		_, token, ok := strings.Cut(msgs[0].TextBody, "https://resume.example.com/r/")
		if !ok {
			t.Fatalf("no redirect link in:\n%s", msgs[0].TextBody)
		}
		token = strings.Fields(token)[0]
		claims, err := signer.Verify(token, e.clock.Now())
		x := e.inquiry(t, inq.ID).ExpiresAt
		if err != nil || claims.InquiryID != inq.ID || claims.Stage != "1h" || !claims.ExpiresAt.Equal(x) {
			t.Errorf("redirect claims %+v, %v; want %s, 1h, %v", claims, err, inq.ID, x)
		}
		if n := e.sim.Requests(); n != 0 {
			t.Errorf("%d Persona requests in redirect mode, want none", n)
		}
	})
	t.Run("one-time link", func(t *testing.T) {
		e := newSchedEnv(t)
		inq := e.pending(t, personatest.InquiryParams{EmailAddress: "jane@example.com"})
		e.clock.Add(23 * time.Hour)
		e.sync(t)
		s := e.scheduler(t, nil, func(o *SchedulerOptions) { o.LinkMode = LinkOneTimeLink })
		sweep(t, s)
		msgs := e.mail.Messages()
		if len(msgs) != 1 || !strings.Contains(msgs[0].TextBody, e.sim.URL()+"/verify?code=") {
			t.Fatalf("want one e-mail with the simulator's one-time link, got %d", len(msgs))
		}
		if n := e.sim.PathRequests("/api/v1/inquiries/" + inq.ID + "/generate-one-time-link"); n != 1 {
			t.Errorf("%d one-time link requests, want 1", n)
		}
	})
}

// TestNewSchedulerValidates checks the options NewScheduler refuses.
func TestNewSchedulerValidates(t *testing.T) {
	e := newSchedEnv(t)
	tests := map[string]func(*SchedulerOptions){
		"no store":            func(o *SchedulerOptions) { o.Store = nil },
		"no channels":         func(o *SchedulerOptions) { o.Channels = nil },
		"duplicate channel":   func(o *SchedulerOptions) { o.Channels = append(o.Channels, o.Channels[0]) },
		"no persona":          func(o *SchedulerOptions) { o.Persona = nil },
		"redirect, no signer": func(o *SchedulerOptions) { o.LinkMode = LinkRedirect },
		"redirect, weak signer": func(o *SchedulerOptions) {
			o.LinkMode, o.Redirect = LinkRedirect, &link.Signer{Secret: []byte("short"), PublicURL: "https://x.example"}
		},
		"unknown mode":     func(o *SchedulerOptions) { o.LinkMode = "carrier-pigeon" },
		"zero stage":       func(o *SchedulerOptions) { o.Stages = []time.Duration{0} },
		"duplicate stage":  func(o *SchedulerOptions) { o.Stages = []time.Duration{time.Hour, 60 * time.Minute} },
		"negative lease":   func(o *SchedulerOptions) { o.Lease = -time.Second },
		"fractional stage": func(o *SchedulerOptions) { o.Stages = []time.Duration{time.Hour + time.Millisecond} },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			opts := SchedulerOptions{Store: e.store, Persona: e.client, Channels: []Channel{e.email}}
			edit(&opts)
			if _, err := NewScheduler(opts); err == nil {
				t.Error("NewScheduler accepted the options")
			}
		})
	}
	if _, err := NewScheduler(SchedulerOptions{Store: e.store, Persona: e.client, Channels: []Channel{e.email}}); err != nil {
		t.Errorf("NewScheduler with the minimal options: %v", err)
	}
	var _ ReminderStore = (*state.Store)(nil)
	var _ Persona = (*persona.Client)(nil)
}

// TestSchedulerCustomStages: stages other than the defaults, named in minutes and seconds,
// are recorded under the same names by the store and the scheduler.
func TestSchedulerCustomStages(t *testing.T) {
	stages := []time.Duration{90 * time.Minute, 30 * time.Minute, 1200*time.Second + 30*time.Second}
	e := newSchedEnv(t)
	store, err := state.New(e.redis, state.Config{Prefix: e.prefix, Shards: 8, Now: e.clock.Now, RemindBefore: stages})
	if err != nil {
		t.Fatal(err)
	}
	e.store = store
	inq := e.pending(t, personatest.InquiryParams{EmailAddress: "jane@example.com"})
	x := schedT0.Add(24 * time.Hour)
	e.clock.Set(x.Add(-time.Hour)) // 90m is overdue, 30m not yet due
	e.sync(t)
	s := e.scheduler(t, nil, func(o *SchedulerOptions) { o.Stages = stages; o.MinRemaining = 5 * time.Minute })
	for _, at := range []time.Duration{-time.Hour, -40 * time.Minute, -30 * time.Minute, -25 * time.Minute, -1230 * time.Second, -10 * time.Minute} {
		e.clock.Set(x.Add(at))
		sweep(t, s)
	}
	msgs := e.mail.Messages()
	for _, stage := range []string{"90m", "30m", "20m30s"} {
		if n := messagesFor(msgs, inq.ID, stage); n != 1 {
			t.Errorf("%d %s reminders, want 1", n, stage)
		}
	}
	if len(msgs) != 3 {
		t.Errorf("%d e-mails, want 3", len(msgs))
	}
	if got := e.inquiry(t, inq.ID).RemindersSent; !slices.Equal(got, []string{"90m", "30m", "20m30s"}) {
		t.Errorf("RemindersSent = %v", got)
	}
}

// TestSchedulerFollowsShorterExpiry: a template that expires 7 days after creation and 24
// hours after start (PERSONA.md §5): inquiry.started brings an earlier expires-at and the
// reminders follow it at once. When the event arrives after some stages' times, only the
// stage closest to expiry goes out and the others are skipped; with less than MinRemaining
// left, none goes out.
func TestSchedulerFollowsShorterExpiry(t *testing.T) {
	e := newSchedEnv(t, func(o *personatest.Options) { o.AfterCreate, o.AfterStart = 7*24*time.Hour, 24*time.Hour })
	s := e.scheduler(t, nil, nil)
	params := personatest.InquiryParams{EmailAddress: "jane@example.com"}
	onTime, late, tooLate := e.sim.CreateInquiry(params), e.sim.CreateInquiry(params), e.sim.CreateInquiry(params)
	e.sync(t)
	if got := e.inquiry(t, onTime.ID).ExpiresAt; !got.Equal(schedT0.Add(7 * 24 * time.Hour)) {
		t.Fatalf("created: expires-at %v, want 7 days on", got)
	}

	e.clock.Set(schedT0.Add(time.Hour))
	for _, id := range []string{onTime.ID, late.ID, tooLate.ID} {
		if err := e.sim.Start(id); err != nil {
			t.Fatal(err)
		}
	}
	x := schedT0.Add(25 * time.Hour)
	e.applyFor(t, onTime.ID, "inquiry.started")
	if got := e.inquiry(t, onTime.ID).ExpiresAt; !got.Equal(x) {
		t.Fatalf("started: expires-at %v, want %v", got, x)
	}
	sweep(t, s)

	e.clock.Set(x.Add(-6*time.Hour - time.Second))
	sweep(t, s)
	if n := len(e.mail.Messages()); n != 0 {
		t.Fatalf("%d e-mails a second before the 6h stage", n)
	}
	e.clock.Set(x.Add(-6 * time.Hour))
	sweep(t, s)
	if n := messagesFor(e.mail.Messages(), onTime.ID, "6h"); n != 1 {
		t.Fatalf("%d 6h reminders at the 6h stage of the shorter expiry, want 1", n)
	}

	// late's inquiry.started arrives 30 minutes before its expiry: 1h goes out, 6h is skipped.
	e.clock.Set(x.Add(-30 * time.Minute))
	e.applyFor(t, late.ID, "inquiry.started")
	sweep(t, s)
	// tooLate's arrives 10 minutes before: less than MinRemaining (15 m), nothing goes out.
	e.clock.Set(x.Add(-10 * time.Minute))
	e.applyFor(t, tooLate.ID, "inquiry.started")
	for range 3 {
		sweep(t, s)
		e.clock.Add(2 * time.Minute)
	}

	msgs := e.mail.Messages()
	for _, c := range []struct {
		id, stage string
		want      int
	}{
		{onTime.ID, "6h", 1}, {onTime.ID, "1h", 1}, {late.ID, "1h", 1}, {late.ID, "6h", 0},
		{tooLate.ID, "6h", 0}, {tooLate.ID, "1h", 0},
	} {
		if got := messagesFor(msgs, c.id, c.stage); got != c.want {
			t.Errorf("%s %s reminders = %d, want %d", c.id, c.stage, got, c.want)
		}
	}
	if len(msgs) != 3 {
		t.Errorf("%d e-mails in all, want 3", len(msgs))
	}
	for _, c := range []struct {
		stage, outcome string
		want           float64
	}{
		{"6h", OutcomeSent, 1}, {"1h", OutcomeSent, 2}, {"6h", OutcomeSkippedTooLate, 2}, {"1h", OutcomeSkippedTooLate, 1},
	} {
		if got := e.reminders(t, c.stage, c.outcome); got != c.want {
			t.Errorf("reminders{stage=%s,outcome=%s} = %v, want %v", c.stage, c.outcome, got, c.want)
		}
	}
	if n := e.resumeCalls(tooLate.ID); n != 0 {
		t.Errorf("%d resume calls for the inquiry with too little time left, want none", n)
	}
}
