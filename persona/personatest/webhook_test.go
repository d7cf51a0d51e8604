package personatest_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
)

// receiver is a webhook endpoint that checks Persona-Signature itself (PERSONA.md §1) and
// answers from a script of statuses (200 once the script runs out).
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	script []int
	got    []*persona.Event
	heads  []http.Header
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sig := r.Header.Get("Persona-Signature")
	var ts, v1 string
	for _, part := range strings.Split(sig, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	mac := hmac.New(sha256.New, []byte(rc.secret))
	mac.Write([]byte(ts + "." + string(body)))
	if want := hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(v1), []byte(want)) {
		rc.t.Errorf("bad signature %q", sig)
		w.WriteHeader(401)
		return
	}
	ev, err := persona.ParseEvent(body)
	if err != nil {
		rc.t.Errorf("ParseEvent: %v", err)
		w.WriteHeader(400)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	status := 200
	if len(rc.script) > 0 {
		status, rc.script = rc.script[0], rc.script[1:]
	}
	if status < 300 {
		rc.got = append(rc.got, ev)
	}
	rc.heads = append(rc.heads, r.Header.Clone())
	w.WriteHeader(status)
}

func (rc *receiver) events() []*persona.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*persona.Event(nil), rc.got...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: the machine may be loaded
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSimWebhooks(t *testing.T) {
	fast := []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}
	newSim := func(t *testing.T, rc *receiver, mutate func(*personatest.Options)) *personatest.Server {
		srv := httptest.NewServer(rc)
		t.Cleanup(srv.Close)
		opts := personatest.Options{WebhookURLs: []string{srv.URL}, WebhookSecret: rc.secret, WebhookRetryDelays: fast}
		if mutate != nil {
			mutate(&opts)
		}
		return personatest.NewServer(t, opts)
	}
	t.Run("every change, in order, in Persona's envelope", func(t *testing.T) {
		rc := &receiver{t: t, secret: "wbhsec_test"}
		sim := newSim(t, rc, nil)
		inq := sim.CreateInquiry(personatest.InquiryParams{ReferenceID: "u1", EmailAddress: "jane@example.com", NameFirst: "Jane"})
		must(t, sim.Start(inq.ID))
		must(t, sim.Complete(inq.ID))
		must(t, sim.Approve(inq.ID))
		waitFor(t, "4 events", func() bool { return len(rc.events()) == 4 })
		var names []string
		for _, ev := range rc.events() {
			names = append(names, ev.Name)
			// §3: payload is the inquiry with relationships and fields.
			if ev.InquiryID != inq.ID || ev.Inquiry.TemplateID == "" || ev.Inquiry.AccountID == "" ||
				ev.Inquiry.EmailAddress != "jane@example.com" || ev.Inquiry.NameFirst != "Jane" || ev.Inquiry.ExpiresAt.IsZero() {
				t.Errorf("event %s payload %+v", ev.Name, ev.Inquiry)
			}
			// §4: the status matches the event.
			if st, ok := persona.StatusForEvent(ev.Name); !ok || st != ev.Inquiry.Status {
				t.Errorf("event %s carries status %s", ev.Name, ev.Inquiry.Status)
			}
		}
		if got := strings.Join(names, " "); got != "inquiry.created inquiry.started inquiry.completed inquiry.approved" {
			t.Errorf("events %s", got)
		}
		if !strings.HasPrefix(rc.events()[0].ID, "evt_") {
			t.Errorf("event id %q", rc.events()[0].ID)
		}
	})
	t.Run("expiry by the clock", func(t *testing.T) {
		rc := &receiver{t: t, secret: "s"}
		sim := newSim(t, rc, nil)
		inq := sim.CreateInquiry(personatest.InquiryParams{})
		sim.Advance(25 * time.Hour)
		waitFor(t, "2 events", func() bool { return len(rc.events()) == 2 })
		ev := rc.events()[1]
		if ev.Name != "inquiry.expired" || !ev.CreatedAt.Equal(inq.ExpiresAt) || !ev.Inquiry.ExpiredAt.Equal(inq.ExpiresAt) {
			t.Errorf("expiry event %s at %v, want inquiry.expired at %v", ev.Name, ev.CreatedAt, inq.ExpiresAt)
		}
	})
	t.Run("retried until 2xx with attempt headers", func(t *testing.T) {
		// §1, §2: anything but 200/201/202/204 is retried; attempt headers count.
		rc := &receiver{t: t, secret: "s", script: []int{500, 302, 201}}
		sim := newSim(t, rc, nil)
		sim.CreateInquiry(personatest.InquiryParams{})
		waitFor(t, "delivery", func() bool { return len(rc.events()) == 1 })
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if len(rc.heads) != 3 {
			t.Fatalf("%d attempts, want 3", len(rc.heads))
		}
		for i, h := range rc.heads {
			if h.Get("Persona-Webhook-Attempts-Made") != strconv.Itoa(i+1) || h.Get("Persona-Webhook-Attempts-Left") != strconv.Itoa(3-i) ||
				h.Get("Persona-Webhook-First-Attempted-At") != rc.heads[0].Get("Persona-Webhook-First-Attempted-At") {
				t.Errorf("attempt %d headers %v", i+1, h)
			}
		}
	})
	t.Run("abandoned after the last attempt", func(t *testing.T) {
		rc := &receiver{t: t, secret: "s", script: []int{500, 500, 500, 500, 500, 500}}
		sim := newSim(t, rc, nil)
		sim.CreateInquiry(personatest.InquiryParams{})
		waitFor(t, "4 attempts", func() bool { return len(sim.Deliveries()) == 4 })
		time.Sleep(50 * time.Millisecond)
		if n := len(sim.Deliveries()); n != 4 {
			t.Errorf("%d attempts, want 1+3", n)
		}
	})
	t.Run("duplicates and reordering on request", func(t *testing.T) {
		rc := &receiver{t: t, secret: "s"}
		sim := newSim(t, rc, func(o *personatest.Options) { o.WebhookDuplicates, o.WebhookReorder = true, true })
		inq := sim.CreateInquiry(personatest.InquiryParams{})
		must(t, sim.Start(inq.ID))
		waitFor(t, "4 deliveries", func() bool { return len(rc.events()) == 4 })
		evs := rc.events()
		if evs[0].ID != evs[1].ID || evs[0].Name != "inquiry.started" {
			t.Errorf("got %s %s %s %s", evs[0].Name, evs[1].Name, evs[2].Name, evs[3].Name)
		}
	})
	t.Run("camelCase events", func(t *testing.T) {
		rc := &receiver{t: t, secret: "s"}
		sim := newSim(t, rc, func(o *personatest.Options) { o.WebhookKeyInflection = "camel" })
		sim.CreateInquiry(personatest.InquiryParams{})
		waitFor(t, "delivery", func() bool { return len(rc.events()) == 1 })
		if !bytes.Contains(sim.Events()[0].Body, []byte(`"createdAt"`)) {
			t.Errorf("not camelCase: %s", sim.Events()[0].Body)
		}
	})
	t.Run("close stops retries", func(t *testing.T) {
		rc := &receiver{t: t, secret: "s", script: []int{500, 500, 500, 500}}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		sim := personatest.New(personatest.Options{WebhookURLs: []string{srv.URL}, WebhookSecret: "s",
			WebhookRetryDelays: []time.Duration{time.Hour}})
		sim.CreateInquiry(personatest.InquiryParams{})
		waitFor(t, "first attempt", func() bool { return len(sim.Deliveries()) == 1 })
		done := make(chan struct{})
		go func() { sim.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Close waits for an hour-long retry")
		}
	})
}
