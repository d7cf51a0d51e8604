package persona_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
)

// newClient returns a client of sim with fast retries and a debug logger into logs.
func newClient(t *testing.T, sim *personatest.Server, logs *testenv.Buffer, mutate func(*persona.ClientOptions)) *persona.Client {
	t.Helper()
	opts := persona.ClientOptions{
		BaseURL:        sim.URL(),
		APIKey:         sim.APIKey(),
		Version:        "2023-01-05",
		InitialBackoff: 10 * time.Millisecond,
		MaxBackoff:     50 * time.Millisecond,
		MaxElapsed:     5 * time.Second,
	}
	if logs != nil {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mutate != nil {
		mutate(&opts)
	}
	c, err := persona.NewClient(opts)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

// metricValue is the value of the counter or gauge name with exactly labels, 0 when absent.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	must(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestClientResumeByStatus(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	logs := &testenv.Buffer{}
	c := newClient(t, sim, logs, nil)
	ctx := context.Background()
	var tokens []string

	// PERSONA.md §6: created and pending resume; expired becomes pending with a new expiry
	// from the "after resume" interval; final statuses answer 409; unknown ids 404.
	tests := []struct {
		name    string
		setup   func(id string) error
		wantErr error
	}{
		{"created", func(string) error { return nil }, nil},
		{"pending", sim.Start, nil},
		{"expired", sim.Expire, nil},
		{"completed", sim.Complete, persona.ErrNotResumable},
		{"failed", sim.Fail, persona.ErrNotResumable},
		{"needs_review", func(id string) error { must(t, sim.Complete(id)); return sim.MarkForReview(id) }, persona.ErrNotResumable},
		{"approved", func(id string) error { must(t, sim.Complete(id)); return sim.Approve(id) }, persona.ErrNotResumable},
		{"declined", func(id string) error { must(t, sim.Complete(id)); return sim.Decline(id) }, persona.ErrNotResumable},
		{"redacted", sim.Redact, persona.ErrNotResumable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inq := sim.CreateInquiry(personatest.InquiryParams{ReferenceID: "user-" + tt.name, EmailAddress: "jane@example.com", NameFirst: "Jane"})
			must(t, tt.setup(inq.ID))
			s, err := c.Resume(ctx, inq.ID)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Resume = %v, want %v", err, tt.wantErr)
				}
				if persona.IsTransient(err) {
					t.Errorf("IsTransient(%v) = true for a final error", err)
				}
				var apiErr *persona.APIError
				if !errors.As(err, &apiErr) || apiErr.Title == "" || apiErr.RequestID == "" {
					t.Errorf("error %v lacks Persona's title or Request-Id: %+v", err, apiErr)
				}
				if n := sim.PathRequests("/api/v1/inquiries/" + inq.ID + "/resume"); n != 1 {
					t.Errorf("final error retried: %d requests", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resume: %v", err)
			}
			tokens = append(tokens, s.Token)
			if !sim.ValidSession(inq.ID, s.Token) {
				t.Error("simulator does not accept the token")
			}
			now, _ := sim.Inquiry(inq.ID)
			if s.Inquiry.Status != now.Status || !now.Status.Resumable() {
				t.Errorf("status %s (simulator %s), want created or pending", s.Inquiry.Status, now.Status)
			}
			if tt.name == "expired" && s.Inquiry.Status != persona.StatusPending {
				t.Errorf("resumed expired inquiry is %s, want pending", s.Inquiry.Status)
			}
			if !s.Inquiry.ExpiresAt.Equal(now.ExpiresAt) || !s.Inquiry.ExpiresAt.After(sim.Now()) {
				t.Errorf("expires-at %v, simulator %v, now %v", s.Inquiry.ExpiresAt, now.ExpiresAt, sim.Now())
			}
			// The token's exp is the inquiry's expiry (PERSONA.md §6), read without verification.
			if want := now.ExpiresAt.Truncate(time.Second); !s.ExpiresAt.Equal(want) {
				t.Errorf("session ExpiresAt %v, want %v", s.ExpiresAt, want)
			}
			if s.Inquiry.EmailAddress != "jane@example.com" && tt.name != "redacted" {
				t.Errorf("email %q not decoded", s.Inquiry.EmailAddress)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		_, err := c.Resume(ctx, "inq_doesnotexist")
		if !errors.Is(err, persona.ErrNotFound) {
			t.Fatalf("Resume = %v, want ErrNotFound", err)
		}
	})
	t.Run("invalid id is not sent", func(t *testing.T) {
		before := sim.Requests()
		if _, err := c.Resume(ctx, "../inquiries"); !errors.Is(err, persona.ErrNotFound) {
			t.Fatalf("Resume = %v, want ErrNotFound", err)
		}
		if sim.Requests() != before {
			t.Error("an invalid id reached the API")
		}
	})
	// DESIGN.md decision 7: tokens never reach a log line.
	for _, tok := range tokens {
		if strings.Contains(logs.String(), tok) {
			t.Fatal("a session token appears in the client's logs")
		}
	}
	if !strings.Contains(logs.String(), `"request_id"`) {
		t.Error("Request-Id not logged at debug")
	}
}

func TestClientResumeReusesUnusedSession(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	c := newClient(t, sim, nil, nil)
	ctx := context.Background()
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	a, err := c.Resume(ctx, inq.ID)
	must(t, err)
	b, err := c.Resume(ctx, inq.ID)
	must(t, err)
	if a.Token != b.Token || sim.Sessions(inq.ID) != 1 {
		t.Fatalf("second resume minted again (%d sessions); PERSONA.md §6 reuses an unused one", sim.Sessions(inq.ID))
	}
	must(t, sim.UseSession(inq.ID, a.Token))
	d, err := c.Resume(ctx, inq.ID)
	must(t, err)
	if d.Token == a.Token || sim.Sessions(inq.ID) != 2 {
		t.Fatalf("resume after use returned the used session")
	}
}

func TestClientSessionLimitIsFinal(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{MaxSessions: 2})
	c := newClient(t, sim, nil, nil)
	ctx := context.Background()
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	for range 2 {
		s, err := c.Resume(ctx, inq.ID)
		must(t, err)
		must(t, sim.UseSession(inq.ID, s.Token))
	}
	_, err := c.Resume(ctx, inq.ID)
	if !errors.Is(err, persona.ErrRejected) || persona.IsTransient(err) {
		t.Fatalf("Resume past the session limit = %v, want final ErrRejected", err)
	}
	if n := sim.PathRequests("/api/v1/inquiries/" + inq.ID + "/resume"); n != 3 {
		t.Errorf("%d requests, want 3 (no retry of a final error)", n)
	}
}

func TestClientUnauthorizedLogsOnce(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	logs := &testenv.Buffer{}
	c := newClient(t, sim, logs, func(o *persona.ClientOptions) { o.APIKey = "persona_sandbox_wrong" })
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	for range 3 {
		_, err := c.GetInquiry(context.Background(), inq.ID)
		if !errors.Is(err, persona.ErrUnauthorized) || persona.IsTransient(err) {
			t.Fatalf("GetInquiry with a wrong key = %v, want final ErrUnauthorized", err)
		}
		if strings.Contains(err.Error(), "persona_sandbox_wrong") {
			t.Fatal("the api key appears in the error")
		}
	}
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 {
		t.Errorf("%d error lines for a rejected key, want 1:\n%s", n, logs)
	}
	if sim.Requests() != 3 {
		t.Errorf("%d requests, want 3 (401 is not retried)", sim.Requests())
	}
	if strings.Contains(logs.String(), "persona_sandbox_wrong") {
		t.Error("the api key appears in the logs")
	}
}

func TestClientRateLimitedThenSuccess(t *testing.T) {
	// PERSONA.md §7: a fixed window; 429 beyond it; ratelimit-reset says when to come back.
	sim := personatest.NewServer(t, personatest.Options{RateLimit: 2, RateWindow: time.Second})
	reg := prometheus.NewRegistry()
	c := newClient(t, sim, nil, func(o *persona.ClientOptions) { o.Registerer = reg })
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	ctx := context.Background()
	start := time.Now()
	for i := range 3 {
		if _, err := c.GetInquiry(ctx, inq.ID); err != nil {
			t.Fatalf("GetInquiry %d: %v", i, err)
		}
	}
	var limited int
	for _, r := range sim.RequestLog() {
		if r.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("the simulator never answered 429; the test proves nothing")
	}
	if got := metricValue(t, reg, "resumer_persona_retries_total", map[string]string{"op": "get_inquiry"}); got != float64(limited) {
		t.Errorf("retries metric %v, want %d", got, limited)
	}
	if got := metricValue(t, reg, "resumer_persona_requests_total", map[string]string{"op": "get_inquiry", "code": "429"}); got != float64(limited) {
		t.Errorf("429 counter %v, want %d", got, limited)
	}
	// A 429 waits at least ratelimit-reset: the third call lands in the next window.
	if sim.Requests() > 3+limited || time.Since(start) > 15*time.Second {
		t.Errorf("%d requests in %s", sim.Requests(), time.Since(start))
	}
}

func TestClientUnavailableStormIsBounded(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	sim.FailNext(1_000_000, http.StatusServiceUnavailable)
	t.Run("MaxElapsed", func(t *testing.T) {
		c := newClient(t, sim, nil, func(o *persona.ClientOptions) { o.MaxElapsed = 300 * time.Millisecond })
		before := sim.Requests()
		start := time.Now()
		_, err := c.Resume(context.Background(), inq.ID)
		if !errors.Is(err, persona.ErrUnavailable) || !persona.IsTransient(err) {
			t.Fatalf("Resume in a 5xx storm = %v, want transient ErrUnavailable", err)
		}
		// The storm lasts a million requests: any bound proves MaxElapsed; this one leaves
		// room for a loaded machine.
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("took %s with MaxElapsed 300ms", d)
		}
		if n := sim.Requests() - before; n < 3 {
			t.Errorf("%d attempts; want retries", n)
		}
	})
	t.Run("context", func(t *testing.T) {
		c := newClient(t, sim, nil, func(o *persona.ClientOptions) { o.MaxElapsed = time.Hour })
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Resume(ctx, inq.ID)
		if !errors.Is(err, persona.ErrUnavailable) {
			t.Fatalf("Resume = %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("took %s with a 300ms context (MaxElapsed an hour)", d)
		}
	})
	t.Run("network", func(t *testing.T) {
		c, err := persona.NewClient(persona.ClientOptions{BaseURL: "http://127.0.0.1:1", APIKey: "k",
			InitialBackoff: time.Millisecond, MaxElapsed: 50 * time.Millisecond})
		must(t, err)
		_, err = c.GetInquiry(context.Background(), inq.ID)
		if !errors.Is(err, persona.ErrUnavailable) {
			t.Fatalf("GetInquiry of a closed port = %v, want ErrUnavailable", err)
		}
	})
}

func TestClientIdempotencyKeyStableAcrossRetries(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	c := newClient(t, sim, nil, nil)
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	path := "/api/v1/inquiries/" + inq.ID + "/resume"
	sim.FailNext(2, http.StatusBadGateway)
	first, err := c.Resume(context.Background(), inq.ID)
	must(t, err)
	second, err := c.Resume(context.Background(), inq.ID)
	must(t, err)
	var keys []string
	for _, r := range sim.RequestLog() {
		if r.Path == path {
			keys = append(keys, r.IdempotencyKey)
		}
	}
	if len(keys) != 4 {
		t.Fatalf("%d resume requests, want 3 attempts + 1", len(keys))
	}
	if keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("idempotency keys across retries of one call: %q", keys[:3])
	}
	if keys[3] == keys[0] {
		t.Error("a second logical call reused the first call's idempotency key")
	}
	if first.Token != second.Token {
		t.Error("unused session not reused")
	}
}

func TestClientListInquiriesPaginates(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	c := newClient(t, sim, nil, nil)
	want := map[string]bool{}
	for i := range 23 {
		inq := sim.CreateInquiry(personatest.InquiryParams{ReferenceID: fmt.Sprintf("user-%d", i), TemplateID: "itmpl_a"})
		switch i % 3 {
		case 0:
			want[inq.ID] = true
		case 1:
			must(t, sim.Start(inq.ID))
			want[inq.ID] = true
		case 2:
			must(t, sim.Complete(inq.ID))
		}
	}
	sim.CreateInquiry(personatest.InquiryParams{TemplateID: "itmpl_other"})
	ctx := context.Background()
	f := persona.InquiryFilter{Statuses: []persona.Status{persona.StatusCreated, persona.StatusPending}, TemplateID: "itmpl_a", PageSize: 4}
	got := map[string]bool{}
	var last time.Time
	for inq, err := range c.ListInquiries(ctx, f) {
		must(t, err)
		if got[inq.ID] {
			t.Fatalf("%s listed twice", inq.ID)
		}
		if !want[inq.ID] {
			t.Fatalf("%s (%s, %s) does not match the filter", inq.ID, inq.Status, inq.TemplateID)
		}
		if !last.IsZero() && inq.CreatedAt.After(last) {
			t.Error("not newest first")
		}
		last = inq.CreatedAt
		got[inq.ID] = true
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d inquiries, want %d", len(got), len(want))
	}
	pages := sim.PathRequests("/api/v1/inquiries")
	if wantPages := (len(want) + 3) / 4; pages != wantPages {
		t.Errorf("%d page requests, want %d", pages, wantPages)
	}
	t.Run("break stops paging", func(t *testing.T) {
		before := sim.PathRequests("/api/v1/inquiries")
		for range c.ListInquiries(ctx, f) {
			break
		}
		if n := sim.PathRequests("/api/v1/inquiries") - before; n != 1 {
			t.Errorf("%d requests after break, want 1", n)
		}
	})
	t.Run("reference id", func(t *testing.T) {
		var n int
		for inq, err := range c.ListInquiries(ctx, persona.InquiryFilter{ReferenceID: "user-4"}) {
			must(t, err)
			if inq.ReferenceID != "user-4" {
				t.Errorf("reference id %q", inq.ReferenceID)
			}
			n++
		}
		if n != 1 {
			t.Errorf("%d inquiries of user-4, want 1", n)
		}
	})
	t.Run("error ends the sequence", func(t *testing.T) {
		sim.FailNext(1, http.StatusForbidden)
		var errs int
		for inq, err := range c.ListInquiries(ctx, f) {
			if err == nil || inq != nil || !errors.Is(err, persona.ErrUnauthorized) {
				t.Fatalf("got (%v, %v), want (nil, ErrUnauthorized)", inq, err)
			}
			errs++
		}
		if errs != 1 {
			t.Errorf("%d errors yielded, want 1", errs)
		}
	})
}

func TestClientGenerateOneTimeLink(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	c := newClient(t, sim, nil, nil)
	ctx := context.Background()
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	link, got, err := c.GenerateOneTimeLink(ctx, inq.ID)
	must(t, err)
	if got.ID != inq.ID || !strings.Contains(link, "/verify?code=") {
		t.Fatalf("link %q for %s", link, got.ID)
	}
	// PERSONA.md §6: not for expired inquiries (resume first); final statuses are refused.
	must(t, sim.Expire(inq.ID))
	if _, _, err := c.GenerateOneTimeLink(ctx, inq.ID); !errors.Is(err, persona.ErrNotResumable) {
		t.Errorf("one-time link of an expired inquiry = %v, want ErrNotResumable", err)
	}
	done := sim.CreateInquiry(personatest.InquiryParams{})
	must(t, sim.Complete(done.ID))
	if _, _, err := c.GenerateOneTimeLink(ctx, done.ID); !errors.Is(err, persona.ErrNotResumable) {
		t.Errorf("one-time link of a completed inquiry = %v, want ErrNotResumable", err)
	}
	if _, _, err := c.GenerateOneTimeLink(ctx, "inq_unknown"); !errors.Is(err, persona.ErrNotFound) {
		t.Errorf("one-time link of an unknown inquiry = %v, want ErrNotFound", err)
	}
}

func TestClientGetInquiry(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	c := newClient(t, sim, nil, nil)
	want := sim.CreateInquiry(personatest.InquiryParams{ReferenceID: "user-9", TemplateID: "itmpl_x", AccountID: "act_y",
		EmailAddress: "jane@example.com", NameFirst: "Jane"})
	must(t, sim.Start(want.ID))
	want, _ = sim.Inquiry(want.ID)
	got, err := c.GetInquiry(context.Background(), want.ID)
	must(t, err)
	if *got != *want {
		t.Errorf("GetInquiry = %+v\nwant %+v", got, want)
	}
	if _, err := c.GetInquiry(context.Background(), "inq_nope"); !errors.Is(err, persona.ErrNotFound) {
		t.Errorf("GetInquiry(unknown) = %v, want ErrNotFound", err)
	}
}

// recordingLimiter counts the client's calls.
type recordingLimiter struct {
	mu       sync.Mutex
	waits    int
	observed []int
	err      error
}

func (l *recordingLimiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waits++
	return l.err
}

func (l *recordingLimiter) Observe(_ context.Context, remaining, limit int, reset time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observed = append(l.observed, limit)
}

func TestClientLimiterCalledPerAttempt(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{RateLimit: 77})
	lim := &recordingLimiter{}
	c := newClient(t, sim, nil, func(o *persona.ClientOptions) { o.Limiter = lim })
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	sim.FailNext(2, http.StatusInternalServerError)
	_, err := c.Resume(context.Background(), inq.ID)
	must(t, err)
	if lim.waits != 3 || len(lim.observed) != 3 || lim.observed[0] != 77 {
		t.Errorf("waits %d, observed %v; want 3 and 3 x limit 77", lim.waits, lim.observed)
	}
	t.Run("failing limiter does not stop calls", func(t *testing.T) {
		lim.err = errors.New("redis down")
		if _, err := c.GetInquiry(context.Background(), inq.ID); err != nil {
			t.Fatalf("GetInquiry with a failing limiter: %v", err)
		}
	})
}

func TestClientMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := persona.NewClient(persona.ClientOptions{APIKey: "k", Registerer: reg}); err != nil {
			t.Fatal(err)
		}
	}
}
