package persona_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
)

// TestClientRetriesStaleObjectConflict: Persona's 409 "Stale object error ... Please try
// again" is transient (PERSONA.md §6): the client retries it with backoff and the resume
// succeeds, while a 409 about the inquiry's status stays final (TestClientResumeByStatus).
func TestClientRetriesStaleObjectConflict(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	c := newClient(t, sim, nil, nil)
	inq := sim.CreateInquiry(personatest.InquiryParams{})
	path := "/api/v1/inquiries/" + inq.ID + "/resume"

	sim.FailNext(2, http.StatusConflict)
	s, err := c.Resume(context.Background(), inq.ID)
	if err != nil {
		t.Fatalf("Resume after two stale-object conflicts = %v, want success", err)
	}
	if !sim.ValidSession(inq.ID, s.Token) {
		t.Error("simulator does not accept the token")
	}
	if n := sim.PathRequests(path); n != 3 {
		t.Errorf("%d resume requests, want 3 (two conflicts retried)", n)
	}

	// A conflict that never clears: transient ErrStale once the retries are spent, never
	// ErrNotResumable.
	sim.FailNext(1_000_000, http.StatusConflict)
	defer sim.FailNext(0, 0)
	c = newClient(t, sim, nil, func(o *persona.ClientOptions) { o.MaxElapsed = 200 * time.Millisecond })
	_, err = c.Resume(context.Background(), inq.ID)
	if !errors.Is(err, persona.ErrStale) || !persona.IsTransient(err) || errors.Is(err, persona.ErrNotResumable) {
		t.Fatalf("Resume in a conflict storm = %v, want transient ErrStale", err)
	}
}

func TestConflictClassByText(t *testing.T) {
	for _, c := range []struct {
		title, detail string
		want          error
	}{
		{"Stale object error", "The object was modified. Please try again.", persona.ErrStale},
		{"Conflict", "stale object error, please try again", persona.ErrStale},
		{"Conflict", "Please try again.", persona.ErrStale},
		{"Inquiry cannot be resumed", "Inquiry status is completed", persona.ErrNotResumable},
		{"", "", persona.ErrNotResumable},
	} {
		e := &persona.APIError{Op: "resume", Status: http.StatusConflict, Title: c.title, Detail: c.detail}
		if got := e.Class(); got != c.want {
			t.Errorf("409 %q / %q: class %v, want %v", c.title, c.detail, got, c.want)
		}
	}
}

// TestSessionUntil: the time to tell the user is the earlier of the token's exp and the
// inquiry's expiry (PERSONA.md §6), the resume response's expiry winning over the tracked one.
func TestSessionUntil(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	for _, c := range []struct {
		name                     string
		token, response, tracked time.Time
		want                     time.Time
	}{
		{"token first", h(1), h(6), h(6), h(1)},
		{"inquiry first", h(24), h(6), h(6), h(6)},
		{"response beats tracked", h(24), h(20), h(-1), h(20)},
		{"tracked when the response has none", h(24), time.Time{}, h(6), h(6)},
		{"token alone", h(24), time.Time{}, time.Time{}, h(24)},
		{"no token exp", time.Time{}, h(6), h(5), h(6)},
	} {
		s := &persona.Session{ExpiresAt: c.token, Inquiry: &persona.Inquiry{ExpiresAt: c.response}}
		if got := s.Until(c.tracked); !got.Equal(c.want) {
			t.Errorf("%s: Until = %v, want %v", c.name, got, c.want)
		}
	}
}
