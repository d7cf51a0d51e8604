package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/state"
)

// states brings inquiries of the simulator into the states the rules tell apart and returns
// their ids by name. The simulator's clock (everyone's) ends 23h59m30s after creation.
func states(t *testing.T, e *env) map[string]string {
	t.Helper()
	ids := map[string]string{}
	mk := func(name string, then func(id string) error) {
		id := e.sim.CreateInquiry(personatest.InquiryParams{ReferenceID: "ref-" + name, EmailAddress: name + "@example.com"}).ID
		if then != nil {
			if err := then(id); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		ids[name] = id
	}
	mk("created", nil)
	mk("pending", e.sim.Start)
	mk("completed", e.sim.Complete)
	mk("failed", e.sim.Fail)
	mk("needs_review", func(id string) error {
		if err := e.sim.Start(id); err != nil {
			return err
		}
		return e.sim.MarkForReview(id)
	})
	mk("approved", func(id string) error {
		if err := e.sim.Complete(id); err != nil {
			return err
		}
		return e.sim.Approve(id)
	})
	mk("declined", func(id string) error {
		if err := e.sim.Complete(id); err != nil {
			return err
		}
		return e.sim.Decline(id)
	})
	mk("redacted", e.sim.Redact)
	// Expired 30 minutes and 3 hours before the clock ends.
	mk("expired_recently", func(id string) error { return e.sim.SetExpiresAt(id, e.sim.Now().Add(23*time.Hour+29*time.Minute)) })
	mk("expired_long_ago", func(id string) error { return e.sim.SetExpiresAt(id, e.sim.Now().Add(20*time.Hour)) })
	e.sync()
	e.sim.Advance(24*time.Hour - 30*time.Second)
	e.sync() // the inquiry.expired events; "created" and "pending" now have 30 s left
	mk("fresh", nil)
	e.sync()
	return ids
}

// TestInquiryState checks GET /v1/inquiries/{id}: the tracked state and the rules' verdict,
// with RESUMER_RESUME_EXPIRED_WITHIN off and on, and no personal data.
func TestInquiryState(t *testing.T) {
	for _, within := range []time.Duration{0, time.Hour} {
		t.Run("expired_within="+within.String(), func(t *testing.T) {
			e := newEnv(t, &envConfig{api: func(o *Options) { o.ExpiredWithin = within }})
			ids := states(t, e)
			recent := "expired"
			if within > 0 {
				recent = ""
			}
			for name, want := range map[string]struct {
				status persona.Status
				reason string
			}{
				"fresh":            {persona.StatusCreated, ""},
				"created":          {persona.StatusCreated, "expiring"},
				"pending":          {persona.StatusPending, "expiring"},
				"completed":        {persona.StatusCompleted, "status"},
				"failed":           {persona.StatusFailed, "status"},
				"needs_review":     {persona.StatusNeedsReview, "status"},
				"approved":         {persona.StatusApproved, "status"},
				"declined":         {persona.StatusDeclined, "status"},
				"redacted":         {persona.StatusRedacted, "status"},
				"expired_recently": {persona.StatusExpired, recent},
				"expired_long_ago": {persona.StatusExpired, "expired"},
			} {
				t.Run(name, func(t *testing.T) {
					r := e.get(ids[name], "full")
					if r.status != http.StatusOK {
						t.Fatalf("status %d: %s", r.status, r.body)
					}
					var v map[string]any
					if err := json.Unmarshal(r.body, &v); err != nil {
						t.Fatal(err)
					}
					if v["inquiry_id"] != ids[name] || v["status"] != string(want.status) ||
						v["resumable"] != (want.reason == "") || (v["reason"] != nil) != (want.reason != "") ||
						(want.reason != "" && v["reason"] != want.reason) {
						t.Errorf("got %s, want status %s reason %q", r.body, want.status, want.reason)
					}
					if name != "redacted" && v["reference_id"] != "ref-"+name {
						t.Errorf("reference_id %v", v["reference_id"])
					}
					if _, err := time.Parse(time.RFC3339, v["expires_at"].(string)); err != nil {
						t.Errorf("expires_at %v: %v", v["expires_at"], err)
					}
					if strings.Contains(string(r.body), "@example.com") {
						t.Errorf("personal data in %s", r.body)
					}
				})
			}
		})
	}
}

// TestUnknownAndMalformedIDs checks 404 for an unknown inquiry and 400 before any lookup for
// ids that cannot be Persona's, on both routes.
func TestUnknownAndMalformedIDs(t *testing.T) {
	e := newEnv(t, nil)
	wantProblem(t, e.get("inq_unknown1", "full"), http.StatusNotFound, CodeNotFound)
	wantProblem(t, e.post("inq_unknown1", "full"), http.StatusNotFound, CodeNotFound)
	if n := e.sim.PathRequests(resumePath("inq_unknown1")); n != 0 {
		t.Errorf("persona was asked to resume an unknown inquiry %d times", n)
	}
	before := e.store.lookups.Load()
	for _, id := range []string{
		"inq_",                           // nothing after the prefix
		"inq_" + strings.Repeat("a", 65), // too long
		"inq_abc-def",                    // Persona ids have no dashes
		"iqse_abc",                       // another resource's id
		"INQ_abc",
		url.PathEscape("inq_a/b"),
		url.PathEscape("inq_a b"),
		url.PathEscape("inq_ä"),
		"%00",
	} {
		t.Run(id, func(t *testing.T) {
			p := wantProblem(t, e.get(id, "full"), http.StatusBadRequest, CodeInvalidRequest)
			if len(id) > len("inq_") && strings.Contains(p.Detail, id) {
				t.Errorf("detail echoes the id: %q", p.Detail)
			}
			wantProblem(t, e.post(id, "full"), http.StatusBadRequest, CodeInvalidRequest)
		})
	}
	if n := e.store.lookups.Load() - before; n != 0 {
		t.Errorf("%d lookups for malformed ids, want none", n)
	}
}

// TestCheckRules covers the resume rules' edge cases on records alone: unknown expiry,
// unknown or missing status, expired without expired-at, and the window's bounds.
func TestCheckRules(t *testing.T) {
	now := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	s := &Server{minRemaining: time.Minute, expiredWithin: time.Hour}
	for _, tc := range []struct {
		name string
		inq  state.Inquiry
		want Reason // "" for resumable
	}{
		{"created, expiry unknown", state.Inquiry{Status: persona.StatusCreated}, ""},
		{"pending, exactly the minimum left", state.Inquiry{Status: persona.StatusPending, ExpiresAt: now.Add(time.Minute)}, ""},
		{"pending, a second short", state.Inquiry{Status: persona.StatusPending, ExpiresAt: now.Add(59 * time.Second)}, ReasonExpiring},
		{"pending, expires now", state.Inquiry{Status: persona.StatusPending, ExpiresAt: now}, ""},
		{"pending, past expiry within window", state.Inquiry{Status: persona.StatusPending, ExpiresAt: now.Add(-time.Hour)}, ""},
		{"pending, past expiry beyond window", state.Inquiry{Status: persona.StatusPending, ExpiresAt: now.Add(-time.Hour - time.Millisecond)}, ReasonExpired},
		{"expired, expired-at within", state.Inquiry{Status: persona.StatusExpired, ExpiredAt: now.Add(-59 * time.Minute), ExpiresAt: now.Add(-3 * time.Hour)}, ""},
		{"expired, only expires-at, within", state.Inquiry{Status: persona.StatusExpired, ExpiresAt: now.Add(-time.Minute)}, ""},
		{"expired, no times", state.Inquiry{Status: persona.StatusExpired}, ReasonExpired},
		{"no status yet", state.Inquiry{ExpiresAt: now.Add(time.Hour)}, ReasonStatus},
		{"unknown status", state.Inquiry{Status: "archived", ExpiresAt: now.Add(time.Hour)}, ReasonStatus},
		{"completed before expiry", state.Inquiry{Status: persona.StatusCompleted, ExpiresAt: now.Add(time.Hour)}, ReasonStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := s.check(&tc.inq, now)
			if v.resumable != (tc.want == "") || v.reason != tc.want {
				t.Errorf("check = %+v, want reason %q", v, tc.want)
			}
		})
	}
	off := &Server{minRemaining: time.Minute}
	if v := off.check(&state.Inquiry{Status: persona.StatusExpired, ExpiredAt: now}, now); v.resumable {
		t.Errorf("expired inquiry resumable with ExpiredWithin 0: %+v", v)
	}
}
