package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
)

// decodeSession decodes a 201 and checks it against the simulator: the token works there,
// session_expires_at is its exp, and the hosted flow URL carries the id, token and redirect.
func decodeSession(t *testing.T, e *env, id string, r response) SessionView {
	t.Helper()
	if r.status != http.StatusCreated {
		t.Fatalf("status %d, want 201: %s", r.status, r.body)
	}
	var v SessionView
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatal(err)
	}
	if v.InquiryID != id || !e.sim.ValidSession(id, v.SessionToken) {
		t.Fatalf("session for %s not valid at the simulator: %+v", id, v)
	}
	exp, err := persona.SessionTokenExpiry(v.SessionToken)
	if err != nil || !exp.Equal(v.SessionExpiresAt) {
		t.Errorf("session_expires_at %v, token exp %v (%v)", v.SessionExpiresAt, exp, err)
	}
	u, err := url.Parse(v.HostedFlowURL)
	if err != nil || !strings.HasPrefix(v.HostedFlowURL, e.sim.URL()+"/verify?") {
		t.Fatalf("hosted_flow_url %q: %v", v.HostedFlowURL, err)
	}
	q := u.Query()
	if q.Get("inquiry-id") != id || q.Get("session-token") != v.SessionToken || q.Get("redirect-uri") != testRedirectURI {
		t.Errorf("hosted_flow_url query %v", q)
	}
	return v
}

// TestCreateSessionRules runs every resume rule (PERSONA.md §6, §8) against the simulator
// and Redis: what the rules refuse never reaches Persona.
func TestCreateSessionRules(t *testing.T) {
	for _, within := range []time.Duration{0, time.Hour} {
		t.Run("expired_within="+within.String(), func(t *testing.T) {
			e := newEnv(t, &envConfig{api: func(o *Options) { o.ExpiredWithin = within }})
			ids := states(t, e)
			recent := CodeInvalidInquiryState
			if within > 0 {
				recent = ""
			}
			for name, code := range map[string]Code{
				"fresh":            "",
				"created":          CodeInquiryExpiring,
				"pending":          CodeInquiryExpiring,
				"completed":        CodeInvalidInquiryState,
				"failed":           CodeInvalidInquiryState,
				"needs_review":     CodeInvalidInquiryState,
				"approved":         CodeInvalidInquiryState,
				"declined":         CodeInvalidInquiryState,
				"redacted":         CodeInvalidInquiryState,
				"expired_recently": recent,
				"expired_long_ago": CodeInvalidInquiryState,
			} {
				t.Run(name, func(t *testing.T) {
					id := ids[name]
					before := e.sim.Now()
					r := e.post(id, "full")
					if code != "" {
						wantProblem(t, r, http.StatusConflict, code)
						if n := e.sim.PathRequests(resumePath(id)); n != 0 {
							t.Errorf("persona called %d times for a refused inquiry", n)
						}
						return
					}
					v := decodeSession(t, e, id, r)
					sim, _ := e.sim.Inquiry(id)
					if v.InquiryExpiresAt == nil || !v.InquiryExpiresAt.Equal(sim.ExpiresAt) {
						t.Errorf("inquiry_expires_at %v, simulator says %v", v.InquiryExpiresAt, sim.ExpiresAt)
					}
					if name == "expired_recently" {
						// PERSONA.md §6: resuming makes it pending with a new expiry.
						lo, hi := before.Add(24*time.Hour), e.sim.Now().Add(24*time.Hour)
						if sim.Status != persona.StatusPending || v.InquiryExpiresAt.Before(lo) || v.InquiryExpiresAt.After(hi) {
							t.Errorf("resumed expired inquiry: status %s, inquiry_expires_at %v, want pending and 24h from the resume",
								sim.Status, v.InquiryExpiresAt)
						}
					}
				})
			}
		})
	}
}

// TestCreateSessionStateBehindPersona covers the cases where the tracked state is stale:
// past expires-at before the inquiry.expired webhook, Persona not knowing the inquiry, and
// Persona having finished an inquiry Redis still thinks pending. The last two consume no
// mint (Persona answered with an error status).
func TestCreateSessionStateBehindPersona(t *testing.T) {
	e := newEnv(t, &envConfig{api: func(o *Options) { o.MintLimit = 1 }})
	now := e.sim.Now()
	var events []*persona.Event
	for i, ev := range [][]byte{
		eventJSON("evt_past1", "inquiry.started", "inq_pastexpiry", "pending", "ref-a", now.Add(-2*time.Hour), now.Add(-time.Minute)),
		eventJSON("evt_ghost1", "inquiry.created", "inq_ghost", "created", "ref-b", now.Add(-time.Hour), now.Add(time.Hour)),
	} {
		parsed, err := persona.ParseEvent(ev)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		events = append(events, parsed)
	}
	e.applyEvents(events...)
	wantProblem(t, e.post("inq_pastexpiry", "full"), http.StatusConflict, CodeInvalidInquiryState)
	if n := e.sim.Requests(); n != 0 {
		t.Errorf("persona called %d times", n)
	}

	for range 2 { // twice: a refused mint is taken back, so the limit of 1 is never reached
		wantProblem(t, e.post("inq_ghost", "full"), http.StatusNotFound, CodeNotFound)
	}

	id := e.create(personatest.InquiryParams{})
	if err := e.sim.Complete(id); err != nil { // not synced: Redis still says created
		t.Fatal(err)
	}
	for range 2 {
		wantProblem(t, e.post(id, "full"), http.StatusConflict, CodeInvalidInquiryState)
	}
	if n := e.sim.PathRequests(resumePath(id)); n != 2 {
		t.Errorf("persona asked %d times, want 2", n)
	}
}

// TestMintLimit checks the per-inquiry mint limit shared by the API and /r/, with
// Retry-After, and that other inquiries are not affected.
func TestMintLimit(t *testing.T) {
	e := newEnv(t, &envConfig{api: func(o *Options) { o.MintLimit = 3; o.MintWindow = time.Hour }})
	id := e.create(personatest.InquiryParams{})
	other := e.create(personatest.InquiryParams{})
	for range 2 {
		v := decodeSession(t, e, id, e.post(id, "full"))
		if err := e.sim.UseSession(id, v.SessionToken); err != nil { // so the next mint is a new session
			t.Fatal(err)
		}
	}
	if r := e.follow(e.link(id, time.Hour)); r.status != http.StatusSeeOther {
		t.Fatalf("third mint through /r/: %d", r.status)
	}
	r := e.post(id, "full")
	wantProblem(t, r, http.StatusTooManyRequests, CodeRateLimited)
	if s, _ := strconv.Atoi(r.header.Get("Retry-After")); s < 3590 || s > 3600 {
		t.Errorf("Retry-After %q, want about an hour", r.header.Get("Retry-After"))
	}
	page := e.follow(e.link(id, time.Hour))
	wantPage(t, page, pageTooManyAttempts)
	if n := e.sim.PathRequests(resumePath(id)); n != 3 {
		t.Errorf("persona resumed %d times, want 3", n)
	}
	if sessions := e.sim.Sessions(id); sessions != 3 {
		t.Errorf("%d sessions at persona, want 3", sessions)
	}
	decodeSession(t, e, other, e.post(other, "full"))
}

// TestKeyRateLimit checks the per-key request rate: 429 with Retry-After once a key has
// used its requests of the minute, other keys unaffected.
func TestKeyRateLimit(t *testing.T) {
	e := newEnv(t, &envConfig{api: func(o *Options) { o.KeyRate = 3 }})
	id := e.create(personatest.InquiryParams{})
	for i := range 3 {
		if r := e.get(id, "reader"); r.status != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, r.status)
		}
	}
	r := e.get(id, "reader")
	wantProblem(t, r, http.StatusTooManyRequests, CodeRateLimited)
	if s, _ := strconv.Atoi(r.header.Get("Retry-After")); s < 1 || s > 60 {
		t.Errorf("Retry-After %q, want 1 to 60", r.header.Get("Retry-After"))
	}
	wantProblem(t, e.post("bad-id", "reader"), http.StatusForbidden, CodeForbidden) // scope before rate
	wantProblem(t, e.get("bad-id", "reader"), http.StatusTooManyRequests, CodeRateLimited)
	if r := e.get(id, "full"); r.status != http.StatusOK {
		t.Errorf("another key: %d", r.status)
	}
}

// TestPersonaFailures checks how Persona's failures are answered: down, rate limited or too
// slow 503 upstream_unavailable with Retry-After, a refusal 502. A mint Persona answered with
// an error status is taken back; one whose answer never came stays counted (Persona may have
// made the session), so after recovery fewer of the 3 allowed mints are left.
func TestPersonaFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    envConfig
		breaks func(t *testing.T, e *env, id string)
		status int
		// after is how many mints the limit of 3 still allows once Persona works again; -1
		// when it cannot work again in the test.
		after int
	}{
		{"persona 503", envConfig{}, func(_ *testing.T, e *env, _ string) { e.sim.FailNext(100, 503) }, 503, 3},
		{"persona 500", envConfig{}, func(_ *testing.T, e *env, _ string) { e.sim.FailNext(100, 500) }, 503, 3},
		{"persona 429", envConfig{}, func(_ *testing.T, e *env, _ string) { e.sim.FailNext(100, 429) }, 503, 3},
		{"persona slow", envConfig{api: func(o *Options) { o.ResumeTimeout = 100 * time.Millisecond }},
			func(_ *testing.T, e *env, _ string) { e.sim.Delay(time.Second) }, 503, 1},
		{"persona unreachable", envConfig{persona: func(o *persona.ClientOptions) { o.BaseURL = "http://127.0.0.1:1" }},
			func(*testing.T, *env, string) {}, 503, -1},
		{"persona rejects our key", envConfig{persona: func(o *persona.ClientOptions) { o.APIKey = "wrong" }},
			func(*testing.T, *env, string) {}, 502, -1},
		{"persona session cap", envConfig{sim: personatest.Options{MaxSessions: 1}}, func(t *testing.T, e *env, id string) {
			e.sim.Delay(0)
			tok := decodeSession(t, e, id, e.post(id, "full")).SessionToken
			if err := e.sim.UseSession(id, tok); err != nil {
				t.Fatal(err)
			}
		}, 502, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			edit := cfg.api
			cfg.api = func(o *Options) {
				o.MintLimit = 3
				if edit != nil {
					edit(o)
				}
			}
			e := newEnv(t, &cfg)
			id := e.create(personatest.InquiryParams{})
			tc.breaks(t, e, id)
			for range 2 {
				p := wantProblem(t, e.post(id, "full"), tc.status, CodeUpstreamUnavailable)
				if strings.Contains(p.Detail, "persona answered") {
					t.Errorf("detail leaks the upstream error: %q", p.Detail)
				}
			}
			if tc.status == 503 && !strings.Contains(e.logs.String(), `"level":"WARN","msg":"api request"`) {
				t.Errorf("no warning logged for a 503")
			}
			if tc.after < 0 {
				return
			}
			e.sim.FailNext(0, 0)
			e.sim.Delay(0)
			for range tc.after {
				decodeSession(t, e, id, e.post(id, "full"))
			}
			wantProblem(t, e.post(id, "full"), http.StatusTooManyRequests, CodeRateLimited)
		})
	}
}

// TestRequestBody checks the optional body: empty or a JSON object, at most 4 KiB.
func TestRequestBody(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create(personatest.InquiryParams{})
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   Code
	}{
		{"empty object", `{}`, 201, ""},
		{"object", ` {"note": "ignored"} `, 201, ""},
		{"whitespace", "\n", 201, ""},
		{"array", `[1]`, 400, CodeInvalidRequest},
		{"not json", `{"a":`, 400, CodeInvalidRequest},
		{"two objects", `{}{}`, 400, CodeInvalidRequest},
		{"too large", `{"pad":"` + strings.Repeat("x", maxBodyBytes) + `"}`, 413, CodeRequestTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/v1/inquiries/"+id+"/sessions", "full", strings.NewReader(tc.body))
			if tc.code == "" {
				decodeSession(t, e, id, r)
				return
			}
			wantProblem(t, r, tc.status, tc.code)
		})
	}
}

// TestCreateSessionShortenedExpiry: PERSONA.md §5: a template expiring 7 days after creation
// and 24 hours after start. The tracked expiry is inquiry.started's (the newest event's), so
// once those 24 hours have passed (the inquiry.expired webhook not arrived yet) the API
// refuses without calling Persona, which would otherwise revive the expired inquiry
// (PERSONA.md §6) although RESUMER_RESUME_EXPIRED_WITHIN is 0.
func TestCreateSessionShortenedExpiry(t *testing.T) {
	e := newEnv(t, &envConfig{sim: personatest.Options{TemplateIntervals: map[string]personatest.Intervals{
		"itmpl_week": {AfterCreate: 7 * 24 * time.Hour, AfterStart: 24 * time.Hour},
	}}})
	id := e.create(personatest.InquiryParams{TemplateID: "itmpl_week"})
	// The user starts a little later: events in the same millisecond tie in event time, and
	// then the later expiry (the 7-day one) wins (state's tie-break), which is not this case.
	e.sim.Advance(time.Second)
	if err := e.sim.Start(id); err != nil {
		t.Fatal(err)
	}
	e.sync()
	e.sim.Advance(24*time.Hour + time.Minute) // expired at Persona; its event not applied
	wantProblem(t, e.post(id, "full"), http.StatusConflict, CodeInvalidInquiryState)
	if n := e.sim.PathRequests(resumePath(id)); n != 0 {
		t.Errorf("persona asked to resume %d times", n)
	}
	if sim, _ := e.sim.Inquiry(id); sim.Status != persona.StatusExpired {
		t.Errorf("inquiry is %s at Persona, want still expired", sim.Status)
	}
}
