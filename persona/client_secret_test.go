package persona_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
)

// Tests of what must never leak or break: tokens in output, malformed answers, slow Persona.

func TestClientSessionRedacted(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	c := newClient(t, sim, nil, nil)
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	s, err := c.Resume(context.Background(), inq.ID)
	must(t, err)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("resumed", "session", s, "value", *s)
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprint(*s), fmt.Sprintf("%v %+v %#v %s %q", s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v %s", *s, *s, *s, *s), logs.String(),
	} {
		if strings.Contains(out, s.Token) {
			t.Fatalf("token printed: %s", out)
		}
		if !strings.Contains(out, inq.ID) {
			t.Errorf("inquiry id missing: %s", out)
		}
	}
}

func TestClientMalformedResponses(t *testing.T) {
	const secret = "SECRETPART"
	bodies := map[string]string{
		"/api/v1/inquiries/inq_nodata/resume":  `{"meta": {"session-token": "a.` + secret + `.c"}}`,
		"/api/v1/inquiries/inq_notoken/resume": `{"data": {"type": "inquiry", "id": "inq_notoken"}}`,
		"/api/v1/inquiries/inq_notjwt/resume":  `{"data": {"type": "inquiry", "id": "inq_notjwt", "attributes": {"expires-at": "2030-01-01T00:00:00.000Z"}}, "meta": {"session-token": "` + secret + `"}}`,
		"/api/v1/inquiries/inq_garbage/resume": `<html>` + secret,
		"/api/v1/inquiries/inq_camel/resume":   `{"data": {"type": "inquiry", "id": "inq_camel", "attributes": {"status": "pending", "expiresAt": "2030-01-01T00:00:00.000Z"}}, "meta": {"sessionToken": "x.eyJleHAiOjE4OTM0NTYwMDB9.y"}}`,
		"/api/v1/inquiries":                    `{"data": [{"type": "inquiry", "id": "inq_1"}], "links": {"next": "https://evil.example/api/v1/inquiries?page[after]=inq_1"}}`,
	}
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		w.Header().Set("Request-Id", "req_test")
		w.Write([]byte(bodies[r.URL.Path]))
	}))
	logs := &testenv.Buffer{}
	c, err := persona.NewClient(persona.ClientOptions{BaseURL: srv, APIKey: "k", InitialBackoff: time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	must(t, err)
	ctx := context.Background()
	for _, id := range []string{"inq_nodata", "inq_notoken", "inq_garbage"} {
		_, err := c.Resume(ctx, id)
		if !errors.Is(err, persona.ErrMalformedResponse) || persona.IsTransient(err) {
			t.Errorf("Resume(%s) = %v, want final ErrMalformedResponse", id, err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error reveals the body: %v", err)
		}
	}
	s, err := c.Resume(ctx, "inq_notjwt")
	must(t, err)
	if want := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC); !s.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt %v, want the inquiry's expires-at %v when the token has no exp", s.ExpiresAt, want)
	}
	// Key-Inflection camel (PERSONA.md §3): the response is read whatever its casing.
	s, err = c.Resume(ctx, "inq_camel")
	must(t, err)
	if s.Token == "" || s.ExpiresAt.Unix() != 1893456000 || s.Inquiry.Status != persona.StatusPending {
		t.Errorf("camelCase response decoded as %v", s)
	}
	for _, err := range c.ListInquiries(ctx, persona.InquiryFilter{}) {
		if err != nil && !errors.Is(err, persona.ErrMalformedResponse) {
			t.Errorf("links.next to another host = %v, want ErrMalformedResponse", err)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("a token appears in the logs")
	}
	mu.Lock()
	defer mu.Unlock()
	for path, n := range hits {
		if n != 1 {
			t.Errorf("%s requested %d times; a malformed 2xx is final", path, n)
		}
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestClientSlowPersona(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	sim.Delay(300 * time.Millisecond)
	c := newClient(t, sim, nil, func(o *persona.ClientOptions) {
		o.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond}
		o.MaxElapsed = 200 * time.Millisecond
	})
	_, err := c.GetInquiry(context.Background(), inq.ID)
	var apiErr *persona.APIError
	if !errors.Is(err, persona.ErrUnavailable) || !errors.As(err, &apiErr) || apiErr.Status != 0 || apiErr.Err == nil {
		t.Fatalf("GetInquiry of a slow Persona = %v, want ErrUnavailable with the transport error", err)
	}
	sim.Delay(0)
	if _, err := c.GetInquiry(context.Background(), inq.ID); err != nil {
		t.Fatalf("after the delay ends: %v", err)
	}
}
