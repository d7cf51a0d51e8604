package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/state"
)

// winbackEnv is a schedEnv whose store keeps the contact of expired inquiries.
func winbackEnv(t *testing.T, edits ...func(*personatest.Options)) *schedEnv {
	t.Helper()
	e := newSchedEnv(t, edits...)
	s, err := state.New(e.redis, state.Config{Prefix: e.prefix, Shards: 8, Now: e.clock.Now, WinbackContact: true})
	if err != nil {
		t.Fatal(err)
	}
	e.store = s
	return e
}

var winbackSigner = link.Signer{Secret: bytes.Repeat([]byte("w"), 32), PublicURL: "https://resumer.example"}

func (e *schedEnv) winback(t *testing.T, edit func(*WinbackOptions)) *Winback {
	t.Helper()
	signer := winbackSigner
	o := WinbackOptions{
		Store: e.store, Channels: []Channel{e.email}, Within: 72 * time.Hour, Redirect: &signer,
		Persona: e.client, Now: e.clock.Now, Registerer: e.reg, Lease: time.Minute,
	}
	if edit != nil {
		edit(&o)
	}
	w, err := NewWinback(o)
	if err != nil {
		t.Fatalf("NewWinback: %v", err)
	}
	return w
}

func once(t *testing.T, w *Winback) map[string]string {
	t.Helper()
	out, err := w.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var redirectLink = regexp.MustCompile(`https://resumer\.example/r/\S+`)

// TestWinbackSendsOnceInsideItsWindow: users whose inquiry expired get one win-back message,
// in redirect mode (no Persona call, no session), whatever the number of rounds; an inquiry
// finished before it expired, and one whose expiry is older than the window, get none.
func TestWinbackSendsOnceInsideItsWindow(t *testing.T) {
	e := winbackEnv(t)
	a := e.pending(t, personatest.InquiryParams{EmailAddress: "a@example.com", NameFirst: "Ann", ReferenceID: "user-a"})
	b := e.pending(t, personatest.InquiryParams{EmailAddress: "b@example.com", ReferenceID: "user-b"})
	done := e.pending(t, personatest.InquiryParams{EmailAddress: "c@example.com"})
	if err := e.sim.Complete(done.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(25 * time.Hour)
	e.sim.Advance(0) // a and b expire at the simulator (inquiry.expired)
	e.sync(t)
	e.clock.Add(2 * time.Minute)
	before := e.sim.Requests()

	w := e.winback(t, nil)
	got := once(t, w)
	if len(got) != 2 || got[a.ID] != WinbackSent || got[b.ID] != WinbackSent {
		t.Fatalf("first round: %v, want a and b sent", got)
	}
	msgs, err := e.mail.WaitFor(2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		raw := redirectLink.FindString(m.TextBody)
		if raw == "" || strings.Contains(m.TextBody, "session-token") {
			t.Fatalf("win-back e-mail without a redirect link, or with a token:\n%s", m.TextBody)
		}
		u, _ := url.Parse(raw)
		claims, err := winbackSigner.Verify(strings.TrimPrefix(u.Path, "/r/"), e.clock.Now())
		if err != nil || claims.Stage != WinbackStage {
			t.Errorf("link %s: %+v, %v", raw, claims, err)
		}
		if inq := e.inquiry(t, claims.InquiryID); !claims.ExpiresAt.Equal(inq.ExpiredAt.Add(72 * time.Hour).Truncate(time.Second)) {
			t.Errorf("link expires %v, want the window's end %v", claims.ExpiresAt, inq.ExpiredAt.Add(72*time.Hour))
		}
		if m.Subject != "Your identity verification can still be finished" {
			t.Errorf("subject %q: not the win-back template", m.Subject)
		}
	}
	if n := e.sim.Requests() - before; n != 0 {
		t.Errorf("redirect win-backs made %d Persona calls, want none", n)
	}
	// Later rounds send nothing more; the contact kept for the message is gone.
	for range 3 {
		e.clock.Add(10 * time.Minute)
		if more := once(t, w); len(more) != 0 {
			t.Fatalf("later round: %v", more)
		}
	}
	if n := len(e.mail.Messages()); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
	if inq := e.inquiry(t, a.ID); inq.EmailAddress != "" {
		t.Error("the e-mail address outlived the win-back")
	}
	if v := e.metric(t, "resumer_winbacks_total", "outcome", WinbackSent); v != 2 {
		t.Errorf("resumer_winbacks_total{sent} = %v, want 2", v)
	}

	// An inquiry whose expiry is older than the window gets nothing.
	late := e.pending(t, personatest.InquiryParams{EmailAddress: "d@example.com"})
	e.clock.Add(25 * time.Hour)
	e.sim.Advance(0)
	e.sync(t)
	e.clock.Add(73 * time.Hour)
	if got := once(t, w); len(got) != 0 {
		t.Errorf("expired 73h ago with a 72h window: %v", got)
	}
	_ = late
}

// TestWinbackOneTimeLinkRevivesAndRearms: in one-time-link mode the win-back resumes the
// expired inquiry (Persona makes it pending with a new expiry), records that, and the normal
// reminder stages apply again to the new expiry, though they were sent before it expired.
func TestWinbackOneTimeLinkRevivesAndRearms(t *testing.T) {
	e := winbackEnv(t)
	a := e.pending(t, personatest.InquiryParams{EmailAddress: "a@example.com"})
	e.sync(t)
	s := e.scheduler(t, nil, nil)
	e.clock.Add(23*time.Hour + 30*time.Minute) // inside both the 6h and the 1h stage
	sweep(t, s)
	if inq := e.inquiry(t, a.ID); len(inq.RemindersSent) == 0 {
		t.Fatalf("no reminder before expiry: %+v", inq.RemindersSent)
	}
	e.clock.Add(time.Hour)
	e.sim.Advance(0)
	e.sync(t)
	e.clock.Add(2 * time.Minute)
	reminders := len(e.mail.Messages())

	w := e.winback(t, func(o *WinbackOptions) { o.Mode = LinkOneTimeLink })
	if got := once(t, w); got[a.ID] != WinbackSent {
		t.Fatalf("win-back: %v", got)
	}
	simInq, _ := e.sim.Inquiry(a.ID)
	inq := e.inquiry(t, a.ID)
	if simInq.Status != persona.StatusPending || inq.Status != persona.StatusPending || !inq.ExpiresAt.Equal(simInq.ExpiresAt) {
		t.Fatalf("after the win-back: simulator %s until %v, store %s until %v; want both pending with the new expiry",
			simInq.Status, simInq.ExpiresAt, inq.Status, inq.ExpiresAt)
	}
	msgs, err := e.mail.WaitFor(reminders+1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msgs[len(msgs)-1].TextBody, "/verify?code=") {
		t.Errorf("win-back without the one-time link:\n%s", msgs[len(msgs)-1].TextBody)
	}
	// The stages are armed for the new expiry: an hour before it, a reminder goes out again.
	e.clock.Set(inq.ExpiresAt.Add(-50 * time.Minute))
	sweep(t, s)
	if after := len(e.mail.Messages()); after != reminders+2 {
		t.Errorf("%d messages after the revival's stage, want %d", after, reminders+2)
	}
}

// TestWinbackTooOldOffersTheFallback: an inquiry older than the maximum age is not resumed;
// its template's fallback link (a new inquiry for the same reference id, no token) goes out
// instead, and a template without the opt-in gets nothing.
func TestWinbackTooOldOffersTheFallback(t *testing.T) {
	e := winbackEnv(t, func(o *personatest.Options) { o.AfterCreate = 60 * 24 * time.Hour })
	withFB := e.sim.CreateInquiry(personatest.InquiryParams{EmailAddress: "a@example.com", ReferenceID: "user-a", TemplateID: "itmpl_fb"})
	without := e.sim.CreateInquiry(personatest.InquiryParams{EmailAddress: "b@example.com", ReferenceID: "user-b", TemplateID: "itmpl_plain"})
	e.clock.Add(31 * 24 * time.Hour)
	for _, id := range []string{withFB.ID, without.ID} {
		if err := e.sim.Expire(id); err != nil {
			t.Fatal(err)
		}
	}
	e.sync(t)
	e.clock.Add(2 * time.Minute)
	before := e.sim.Requests()
	w := e.winback(t, func(o *WinbackOptions) {
		o.Mode = LinkOneTimeLink
		o.Fallbacks = link.Fallbacks{"itmpl_fb"}
	})
	got := once(t, w)
	if got[withFB.ID] != WinbackFallback || got[without.ID] != WinbackTooOld {
		t.Fatalf("outcomes %v, want fallback_sent and too_old", got)
	}
	if n := e.sim.Requests() - before; n != 0 {
		t.Errorf("too-old inquiries cost %d Persona calls", n)
	}
	msgs, err := e.mail.WaitFor(1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	body := msgs[0].TextBody
	if len(msgs) != 1 || !strings.Contains(body, "inquiry-template-id=itmpl_fb") || !strings.Contains(body, "reference-id=user-a") ||
		strings.Contains(body, "session-token") {
		t.Errorf("fallback message:\n%s", body)
	}
}

// TestWinbackStaleVersion: with the current-version check, an expired inquiry of an older
// template version gets the fallback instead of a resume link.
func TestWinbackStaleVersion(t *testing.T) {
	e := winbackEnv(t)
	a := e.pending(t, personatest.InquiryParams{EmailAddress: "a@example.com", ReferenceID: "user-a", TemplateID: "itmpl_v"})
	e.sim.PublishTemplateVersion("itmpl_v")
	e.clock.Add(25 * time.Hour)
	e.sim.Advance(0)
	e.sync(t)
	e.clock.Add(2 * time.Minute)
	w := e.winback(t, func(o *WinbackOptions) {
		o.CurrentVersions = &persona.TemplateVersions{Source: e.client}
		o.Fallbacks = link.Fallbacks{"*"}
	})
	if got := once(t, w); got[a.ID] != WinbackFallback {
		t.Fatalf("outcome %v, want fallback_sent", got)
	}
}

// TestReminderTooOldDropped: a reminder due for an inquiry created longer ago than the maximum
// age is not sent and no link is minted (the seed advice: a newer template version may be
// out); the inquiry's reminders are dropped with the too_old outcome.
func TestReminderTooOldDropped(t *testing.T) {
	e := newSchedEnv(t, func(o *personatest.Options) { o.AfterCreate = 60 * 24 * time.Hour })
	inq := e.sim.CreateInquiry(personatest.InquiryParams{EmailAddress: "a@example.com"})
	e.sync(t)
	s := e.scheduler(t, nil, nil)
	e.clock.Set(inq.ExpiresAt.Add(-5 * time.Hour)) // the 6h stage is due; the inquiry is 59 days old
	before := e.sim.Requests()
	sweep(t, s)
	if n := len(e.mail.Messages()); n != 0 {
		t.Errorf("%d reminders sent for a 59-day-old inquiry", n)
	}
	if n := e.sim.Requests() - before; n != 0 {
		t.Errorf("%d Persona calls for a too-old inquiry", n)
	}
	if v := e.reminders(t, "6h", OutcomeTooOld); v != 1 {
		t.Errorf("reminders{6h, too_old} = %v, want 1", v)
	}
	if got := e.inquiry(t, inq.ID); got.RemindersDropped != OutcomeTooOld {
		t.Errorf("reminders dropped %q, want %q", got.RemindersDropped, OutcomeTooOld)
	}
}

// TestRecheckBeforeReminding: an inquiry whose last event is older than RecheckAfter is
// checked with Persona before its reminder, in one call for the whole claim batch; one that
// finished without its webhook ever arriving gets no reminder and no session.
func TestRecheckBeforeReminding(t *testing.T) {
	e := newSchedEnv(t)
	done := e.pending(t, personatest.InquiryParams{EmailAddress: "a@example.com"})
	open := e.pending(t, personatest.InquiryParams{EmailAddress: "b@example.com"})
	e.sync(t)
	if err := e.sim.Complete(done.ID); err != nil { // its webhook never arrives
		t.Fatal(err)
	}
	s := e.scheduler(t, nil, func(o *SchedulerOptions) {
		o.Recheck = e.client
		o.RecheckAfter = time.Hour
	})
	e.clock.Set(open.ExpiresAt.Add(-5 * time.Hour))
	before := len(e.sim.RequestLog())
	sweep(t, s)
	msgs := e.mail.Messages()
	if messagesFor(msgs, done.ID, "6h") != 0 || messagesFor(msgs, open.ID, "6h") != 1 {
		t.Errorf("reminders: finished %d, open %d; want 0 and 1", messagesFor(msgs, done.ID, "6h"), messagesFor(msgs, open.ID, "6h"))
	}
	lists, resumes := 0, 0
	for _, r := range e.sim.RequestLog()[before:] {
		switch {
		case r.Path == "/api/v1/inquiries":
			lists++
		case strings.HasSuffix(r.Path, "/resume"):
			resumes++
		}
	}
	if lists != 1 || resumes != 1 {
		t.Errorf("%d re-check calls and %d resumes, want 1 and 1 (the finished inquiry costs no session)", lists, resumes)
	}
	if got := e.inquiry(t, done.ID); got.RemindersDropped != OutcomeNotResumable {
		t.Errorf("finished inquiry's reminders dropped %q, want %q", got.RemindersDropped, OutcomeNotResumable)
	}
}

// TestWinbackWebhookBrandAndLocale: a win-back through the webhook channel keeps the
// reminder's type, says stage "winback", and carries the inquiry's template, the brand
// picked for it and its locale (from the locale field, else the brand's default), like a
// reminder's body.
func TestWinbackWebhookBrandAndLocale(t *testing.T) {
	e := winbackEnv(t)
	e.localeField = "locale"
	acme := e.pending(t, personatest.InquiryParams{EmailAddress: "a@example.com", ReferenceID: "user-a", TemplateID: "itmpl_acme", Locale: "es-MX"})
	globex := e.pending(t, personatest.InquiryParams{ReferenceID: "globex-9"})
	e.clock.Add(25 * time.Hour)
	e.sim.Advance(0)
	e.sync(t)
	e.clock.Add(2 * time.Minute)

	srv, got := receiver(t, http.StatusNoContent, 0)
	wh := newTestWebhook(t, srv.URL, func(o *WebhookOptions) { o.Brands = testBrands(t) })
	w := e.winback(t, func(o *WinbackOptions) { o.Channels = []Channel{wh} })
	if out := once(t, w); out[acme.ID] != WinbackSent || out[globex.ID] != WinbackSent {
		t.Fatalf("outcomes %v, want both sent", out)
	}
	want := map[string]map[string]any{
		acme.ID:   {"type": ReminderEventType, "stage": WinbackStage, "template_id": "itmpl_acme", "locale": "es", "brand": "acme"},
		globex.ID: {"type": ReminderEventType, "stage": WinbackStage, "template_id": "itmpl_simulator", "locale": "de", "brand": "globex"},
	}
	ds := got()
	if len(ds) != 2 {
		t.Fatalf("%d deliveries, want 2", len(ds))
	}
	for _, d := range ds {
		var body map[string]any
		if err := json.Unmarshal(d.body, &body); err != nil {
			t.Fatal(err)
		}
		id, _ := body["inquiry_id"].(string)
		w, ok := want[id]
		if !ok {
			t.Fatalf("delivery for unknown inquiry: %s", d.body)
		}
		for k, v := range w {
			if body[k] != v {
				t.Errorf("%s: body[%s] = %v, want %v", id, k, body[k], v)
			}
		}
	}
}
