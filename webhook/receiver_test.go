package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/webhook"
)

func TestReceiverStoresSignedEvent(t *testing.T) {
	h := newHarness(t, testenv.NATS(t), nil)
	body := readFixture(t, "inquiry-started.json")

	if r := h.deliver(t, body, now); r.status != http.StatusOK {
		t.Fatalf("status = %d (%q), want 200", r.status, r.body)
	}
	if n := h.stored(t); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
	msg := h.message(t, 1)
	if msg.Subject != "persona.events.inquiry.started" {
		t.Errorf("subject = %q, want persona.events.inquiry.started", msg.Subject)
	}
	if !bytes.Equal(msg.Data, body) {
		t.Errorf("stored body differs from the raw request body")
	}
	for name, want := range map[string]string{
		nats.MsgIdHdr:                    fixtureEventID,
		eventstream.HeaderEventName:      "inquiry.started",
		eventstream.HeaderInquiryID:      fixtureInquiryID,
		eventstream.HeaderEventCreatedAt: "2026-01-05T10:00:00Z",
		eventstream.HeaderReceivedAt:     "2026-01-05T10:00:03Z",
	} {
		if got := msg.Header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}

	// Every outcome and reason is exported from the start, at 0 unless it happened.
	const want = `
# HELP resumer_webhook_requests_total Persona webhook requests by outcome: accepted, duplicate, unauthorized, malformed, too_large, unavailable.
# TYPE resumer_webhook_requests_total counter
resumer_webhook_requests_total{outcome="accepted"} 1
resumer_webhook_requests_total{outcome="duplicate"} 0
resumer_webhook_requests_total{outcome="malformed"} 0
resumer_webhook_requests_total{outcome="too_large"} 0
resumer_webhook_requests_total{outcome="unauthorized"} 0
resumer_webhook_requests_total{outcome="unavailable"} 0
# HELP resumer_webhook_verify_failures_total Persona webhook requests refused by the signature check, by reason: missing, malformed, too_old, in_future, no_match.
# TYPE resumer_webhook_verify_failures_total counter
resumer_webhook_verify_failures_total{reason="in_future"} 0
resumer_webhook_verify_failures_total{reason="malformed"} 0
resumer_webhook_verify_failures_total{reason="missing"} 0
resumer_webhook_verify_failures_total{reason="no_match"} 0
resumer_webhook_verify_failures_total{reason="too_old"} 0
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want),
		"resumer_webhook_requests_total", "resumer_webhook_verify_failures_total"); err != nil {
		t.Error(err)
	}
	if n := h.value(t, "request_duration_seconds", "", ""); n != 1 {
		t.Errorf("request duration samples = %v, want 1", n)
	}
	if n := h.value(t, "publish_duration_seconds", "", ""); n != 1 {
		t.Errorf("publish duration samples = %v, want 1", n)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"component":"webhook"`) || !strings.Contains(logs, fixtureEventID) {
		t.Errorf("debug log lacks the component or the event id:\n%s", logs)
	}
}

// TestReceiverRedelivery: Persona delivers an event again, with a new t, when it did not see
// a success in time (PERSONA.md §2). The stream keeps one copy and the answer is still 200.
func TestReceiverRedelivery(t *testing.T) {
	h := newHarness(t, testenv.NATS(t), nil)
	body := readFixture(t, "inquiry-started.json")

	for i, at := range []time.Time{now, now.Add(2 * time.Second), now.Add(3 * time.Second)} {
		if r := h.deliver(t, body, at); r.status != http.StatusOK {
			t.Fatalf("delivery %d: status = %d (%q), want 200", i+1, r.status, r.body)
		}
	}
	if n := h.stored(t); n != 1 {
		t.Fatalf("stream holds %d messages after three deliveries of one event, want 1", n)
	}
	if got := h.value(t, "requests_total", "outcome", "accepted"); got != 1 {
		t.Errorf("accepted = %v, want 1", got)
	}
	if got := h.value(t, "requests_total", "outcome", "duplicate"); got != 2 {
		t.Errorf("duplicate = %v, want 2", got)
	}

	// Another event id is another event.
	other := bytes.Replace(body, []byte(fixtureEventID), []byte("evt_Other0000000000000000000"), 1)
	if r := h.deliver(t, other, now); r.status != http.StatusOK {
		t.Fatalf("other event: status = %d, want 200", r.status)
	}
	if n := h.stored(t); n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
}

func TestReceiverHeaderNameIsCaseInsensitive(t *testing.T) {
	h := newHarness(t, testenv.NATS(t), nil)
	body := readFixture(t, "inquiry-started.json")
	for _, name := range []string{"persona-signature", "PERSONA-SIGNATURE", "Persona-Signature"} {
		t.Run(name, func(t *testing.T) {
			r := h.post(t, name, webhook.Sign(body, newSecret, now), bytes.NewReader(body))
			if r.status != http.StatusOK {
				t.Fatalf("status = %d (%q), want 200", r.status, r.body)
			}
		})
	}
}

// TestReceiverRefusals walks every 4xx path; none may publish anything.
func TestReceiverRefusals(t *testing.T) {
	h := newHarness(t, testenv.NATS(t), func(o *webhook.Options) { o.MaxBodyBytes = 8 << 10 })
	body := readFixture(t, "inquiry-started.json")
	altered := bytes.Clone(body)
	altered[100] ^= 0x01
	large := append(bytes.Clone(body[:len(body)-1]), []byte(`,"pad":"`+strings.Repeat("x", 8<<10)+`"}`)...)
	notEvent := []byte(`{"data":{"type":"inquiry","id":"inq_1","attributes":{"status":"pending"}}}`)
	sig := func(b []byte, at time.Time) string { return webhook.Sign(b, newSecret, at) }

	tests := []struct {
		name        string
		headerName  string
		headerValue string
		body        io.Reader
		status      int
		outcome     string
		reason      string
	}{
		{"no signature", "", "", bytes.NewReader(body), 401, "unauthorized", "missing"},
		// PERSONA.md §1, common mistake: the header is Persona-Signature, not X-Persona-Signature.
		{"X-Persona-Signature", "X-Persona-Signature", sig(body, now), bytes.NewReader(body), 401, "unauthorized", "missing"},
		{"empty signature", webhook.SignatureHeader, "", bytes.NewReader(body), 401, "unauthorized", "missing"},
		{"malformed signature", webhook.SignatureHeader, "t=1767607200,v1=zz", bytes.NewReader(body), 401, "unauthorized", "malformed"},
		{"wrong secret", webhook.SignatureHeader, webhook.Sign(body, []byte("wbhsec_wrong"), now), bytes.NewReader(body), 401, "unauthorized", "no_match"},
		{"body altered by one byte", webhook.SignatureHeader, sig(body, now), bytes.NewReader(altered), 401, "unauthorized", "no_match"},
		{"stale", webhook.SignatureHeader, sig(body, receiverNow.Add(-5*time.Minute-time.Second)), bytes.NewReader(body), 401, "unauthorized", "too_old"},
		{"from the future", webhook.SignatureHeader, sig(body, receiverNow.Add(5*time.Minute+time.Second)), bytes.NewReader(body), 401, "unauthorized", "in_future"},
		{"signed, not json", webhook.SignatureHeader, sig([]byte("hello"), now), strings.NewReader("hello"), 400, "malformed", ""},
		// Not an event envelope at all (an inquiry resource): nothing Persona's webhooks send.
		{"signed, not an event", webhook.SignatureHeader, sig(notEvent, now), bytes.NewReader(notEvent), 400, "malformed", ""},
		{"signed, too large", webhook.SignatureHeader, sig(large, now), bytes.NewReader(large), 413, "too_large", ""},
		// No Content-Length: the cap applies while reading.
		{"signed, too large, chunked", webhook.SignatureHeader, sig(large, now), io.MultiReader(bytes.NewReader(large)), 413, "too_large", ""},
		// A request without a signature is refused before its body is read.
		{"unsigned and too large", "", "", bytes.NewReader(large), 401, "unauthorized", "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outcomeBefore := h.value(t, "requests_total", "outcome", tt.outcome)
			var reasonBefore float64
			if tt.reason != "" {
				reasonBefore = h.value(t, "verify_failures_total", "reason", tt.reason)
			}
			r := h.post(t, tt.headerName, tt.headerValue, tt.body)
			if r.status != tt.status {
				t.Fatalf("status = %d (%q), want %d", r.status, r.body, tt.status)
			}
			if want := http.StatusText(tt.status) + "\n"; r.body != want {
				t.Errorf("body = %q, want the generic %q", r.body, want)
			}
			if r.retryAfter != "" {
				t.Errorf("Retry-After %q on a final refusal", r.retryAfter)
			}
			if got := h.value(t, "requests_total", "outcome", tt.outcome); got != outcomeBefore+1 {
				t.Errorf("requests_total{outcome=%q} = %v, want %v", tt.outcome, got, outcomeBefore+1)
			}
			if tt.reason != "" {
				if got := h.value(t, "verify_failures_total", "reason", tt.reason); got != reasonBefore+1 {
					t.Errorf("verify_failures_total{reason=%q} = %v, want %v", tt.reason, got, reasonBefore+1)
				}
			}
			if n := h.stored(t); n != 0 {
				t.Fatalf("stream holds %d messages after a refusal, want 0", n)
			}
		})
	}
	if got := h.value(t, "publish_duration_seconds", "", ""); got != 0 {
		t.Errorf("%v publishes, want 0", got)
	}

	t.Run("GET", func(t *testing.T) {
		resp, err := h.srv.Client().Get(h.srv.URL + webhook.Path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status = %d, want 405", resp.StatusCode)
		}
	})
}

// TestReceiverNATSDown: with NATS gone the receiver answers 503 with Retry-After, so Persona
// retries (PERSONA.md §2), and stores nothing; once NATS is back the retry is stored.
func TestReceiverNATSDown(t *testing.T) {
	dir := t.TempDir()
	s := testenv.NATSAt(t, -1, dir)
	port := s.Addr().(*net.TCPAddr).Port
	h := newHarness(t, s, func(o *webhook.Options) { o.PublishTimeout = 300 * time.Millisecond })
	body := readFixture(t, "inquiry-started.json")
	if r := h.deliver(t, body, now); r.status != http.StatusOK {
		t.Fatalf("status before the outage = %d, want 200", r.status)
	}

	s.Shutdown()
	s.WaitForShutdown()
	second := bytes.Replace(body, []byte(fixtureEventID), []byte("evt_Second000000000000000000"), 1)
	start := time.Now()
	r := h.deliver(t, second, now)
	if r.status != http.StatusServiceUnavailable || r.retryAfter != "5" {
		t.Fatalf("during the outage: status = %d, Retry-After = %q; want 503 and 5", r.status, r.retryAfter)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("503 took %v, want about the publish timeout", elapsed)
	}
	if got := h.value(t, "requests_total", "outcome", "unavailable"); got != 1 {
		t.Errorf("unavailable = %v, want 1", got)
	}

	testenv.NATSAt(t, port, dir)
	deadline := time.Now().Add(10 * time.Second)
	for !h.nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("client did not reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := h.stored(t); n != 1 {
		t.Fatalf("stream holds %d messages after the outage, want 1 (the 503 must not be stored)", n)
	}
	if r := h.deliver(t, second, now.Add(3*time.Second)); r.status != http.StatusOK {
		t.Fatalf("Persona's retry after the outage: status = %d, want 200", r.status)
	}
	if n := h.stored(t); n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
}

// TestReceiverExpectsItsStream: a publish that would land in another stream (or none) fails,
// and fails as 503, never as a lost event.
func TestReceiverExpectsItsStream(t *testing.T) {
	h := newHarness(t, testenv.NATS(t), func(o *webhook.Options) { o.Stream = "SOME_OTHER_STREAM" })
	r := h.deliver(t, readFixture(t, "inquiry-started.json"), now)
	if r.status != http.StatusServiceUnavailable || r.retryAfter == "" {
		t.Fatalf("status = %d, Retry-After = %q; want 503 with Retry-After", r.status, r.retryAfter)
	}
	if n := h.stored(t); n != 0 {
		t.Fatalf("stream holds %d messages, want 0", n)
	}
}

func TestReceiverPublisherMisbehaves(t *testing.T) {
	body := readFixture(t, "inquiry-started.json")
	tests := []struct {
		name string
		pub  publisherFunc
	}{
		{"slow", func(ctx context.Context, _ *nats.Msg) (*jetstream.PubAck, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}},
		{"error", func(context.Context, *nats.Msg) (*jetstream.PubAck, error) {
			return nil, errors.New("nats: no response from stream")
		}},
		{"no ack", func(context.Context, *nats.Msg) (*jetstream.PubAck, error) { return nil, nil }},
		{"ack from another stream", func(context.Context, *nats.Msg) (*jetstream.PubAck, error) {
			return &jetstream.PubAck{Stream: "OTHER", Sequence: 1}, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			rc, err := webhook.New(webhook.Options{
				Secrets: [][]byte{newSecret}, Publisher: tt.pub, Stream: "EVENTS",
				PublishTimeout: 100 * time.Millisecond, RetryAfter: 1500 * time.Millisecond,
				Registerer: reg, Now: func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
			req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, newSecret, now))
			w := httptest.NewRecorder()
			start := time.Now()
			rc.ServeHTTP(w, req)
			// The slow publisher never returns by itself: any bound proves the timeout; this
			// one leaves room for a loaded machine.
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("answer took %v with a 100ms publish timeout", elapsed)
			}
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "2" {
				t.Errorf("status = %d, Retry-After = %q; want 503 and 2", w.Code, w.Header().Get("Retry-After"))
			}
		})
	}
}

func TestReceiverServeHTTPMethod(t *testing.T) {
	rc, err := webhook.New(webhook.Options{Secrets: [][]byte{newSecret}, Publisher: publisherFunc(nil)})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	rc.ServeHTTP(w, httptest.NewRequest(http.MethodPut, "/anywhere", nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != http.MethodPost {
		t.Errorf("status = %d, Allow = %q; want 405 and POST", w.Code, w.Header().Get("Allow"))
	}
}

func TestNew(t *testing.T) {
	pub := publisherFunc(nil)
	tests := []struct {
		name    string
		opts    webhook.Options
		wantErr string
	}{
		{"minimal", webhook.Options{Secrets: [][]byte{newSecret}, Publisher: pub}, ""},
		{"empty entries ignored", webhook.Options{Secrets: [][]byte{nil, newSecret, {}}, Publisher: pub}, ""},
		{"no secrets", webhook.Options{Publisher: pub}, "no webhook secret"},
		{"only empty secrets", webhook.Options{Secrets: [][]byte{{}, nil}, Publisher: pub}, "no webhook secret"},
		{"no publisher", webhook.Options{Secrets: [][]byte{newSecret}}, "Publisher is nil"},
		{"negative tolerance", webhook.Options{Secrets: [][]byte{newSecret}, Publisher: pub, Tolerance: -time.Second}, "Tolerance"},
		{"negative body cap", webhook.Options{Secrets: [][]byte{newSecret}, Publisher: pub, MaxBodyBytes: -1}, "MaxBodyBytes"},
		{"negative publish timeout", webhook.Options{Secrets: [][]byte{newSecret}, Publisher: pub, PublishTimeout: -1}, "PublishTimeout"},
		{"negative retry after", webhook.Options{Secrets: [][]byte{newSecret}, Publisher: pub, RetryAfter: -1}, "RetryAfter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := webhook.New(tt.opts)
			if tt.wantErr == "" {
				if err != nil || rc == nil {
					t.Fatalf("New = %v, %v", rc, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "create webhook receiver: ") {
				t.Fatalf("New error = %v, want one about %s", err, tt.wantErr)
			}
		})
	}
	// A nil Registerer registers nowhere, so any number of receivers can coexist.
	for range 2 {
		if _, err := webhook.New(webhook.Options{Secrets: [][]byte{newSecret}, Publisher: pub}); err != nil {
			t.Fatal(err)
		}
	}
}
