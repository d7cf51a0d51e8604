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
)

// TestStaleInquiryGuard: an inquiry created longer ago than the maximum age is not resumed
// (inquiry_too_old, 409; the seed advice that a newer template version may be out), never
// reaching Persona; a per-template override lets one template's inquiries live longer; a
// template that opts in offers the static fallback link, without any session token, in the
// refusal and in GET.
func TestStaleInquiryGuard(t *testing.T) {
	e := newEnv(t, &envConfig{
		sim: personatest.Options{AfterCreate: 90 * 24 * time.Hour},
		api: func(o *Options) {
			o.MaxAgeByTemplate = map[string]time.Duration{"itmpl_long": 60 * 24 * time.Hour}
			o.Fallbacks = []string{"itmpl_fallback"}
		},
	})
	fallback := e.create(personatest.InquiryParams{ReferenceID: "user-1", TemplateID: "itmpl_fallback"})
	plain := e.create(personatest.InquiryParams{ReferenceID: "user-2", TemplateID: "itmpl_plain"})
	long := e.create(personatest.InquiryParams{ReferenceID: "user-3", TemplateID: "itmpl_long"})
	done := e.create(personatest.InquiryParams{ReferenceID: "user-4", TemplateID: "itmpl_fallback"})
	if err := e.sim.Complete(done); err != nil {
		t.Fatal(err)
	}
	e.sync()

	// Young enough: resumable.
	decodeSession(t, e, fallback, e.post(fallback, "full"))

	e.sim.Advance(31 * 24 * time.Hour) // past the default 30 days, inside itmpl_long's 60
	before := e.sim.PathRequests(resumePath(fallback)) + e.sim.PathRequests(resumePath(plain))

	p := wantProblem(t, e.post(fallback, "full"), http.StatusConflict, CodeInquiryTooOld)
	u, err := url.Parse(p.FallbackURL)
	if err != nil || p.FallbackURL == "" {
		t.Fatalf("fallback_url %q: %v", p.FallbackURL, err)
	}
	q := u.Query()
	if q.Get("inquiry-template-id") != "itmpl_fallback" || q.Get("reference-id") != "user-1" ||
		q.Has("session-token") || q.Has("inquiry-id") {
		t.Errorf("fallback_url %q: want template and reference id, no token or inquiry id", p.FallbackURL)
	}
	if p := wantProblem(t, e.post(plain, "full"), http.StatusConflict, CodeInquiryTooOld); p.FallbackURL != "" {
		t.Errorf("template without opt-in offered %q", p.FallbackURL)
	}
	if after := e.sim.PathRequests(resumePath(fallback)) + e.sim.PathRequests(resumePath(plain)); after != before {
		t.Errorf("refused resumes reached Persona: %d calls", after-before)
	}
	decodeSession(t, e, long, e.post(long, "full"))

	// The /r/ link of a reminder shows a page offering the fallback instead of resuming.
	r := e.follow(e.link(fallback, time.Hour))
	if r.status == http.StatusFound || !strings.Contains(string(r.body), "inquiry-template-id=itmpl_fallback") ||
		strings.Contains(string(r.body), "session-token") {
		t.Errorf("/r/ of a too-old inquiry: %d %s; want a page with the fallback link and no token", r.status, r.body)
	}

	// GET says the same; a completed inquiry is refused for its status, with nothing to
	// start over.
	for id, want := range map[string]struct {
		reason   Reason
		fallback bool
	}{fallback: {ReasonTooOld, true}, plain: {ReasonTooOld, false}, long: {"", false}, done: {ReasonStatus, false}} {
		r := e.get(id, "full")
		var v InquiryView
		if err := json.Unmarshal(r.body, &v); err != nil || r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", id, r.status, r.body)
		}
		if v.Reason != want.reason || (v.FallbackURL != "") != want.fallback || v.Resumable != (want.reason == "") {
			t.Errorf("GET %s = %+v, want reason %q, fallback %v", id, v, want.reason, want.fallback)
		}
	}
}

// TestCurrentVersionOnly: with the check on, an inquiry pinned to a template version older
// than the template's published one is refused like a too-old one (reason stale_version) and
// offered the fallback; one on the current version is resumed; the template is asked once
// per cache period, not per request.
func TestCurrentVersionOnly(t *testing.T) {
	versions := &persona.TemplateVersions{}
	e := newEnv(t, &envConfig{api: func(o *Options) {
		o.CurrentVersions = versions
		o.Fallbacks = []string{"*"}
	}})
	client, err := persona.NewClient(persona.ClientOptions{BaseURL: e.sim.URL(), APIKey: e.sim.APIKey()})
	if err != nil {
		t.Fatal(err)
	}
	versions.Source, versions.Now = client, e.sim.Now
	old := e.create(personatest.InquiryParams{ReferenceID: "user-old", TemplateID: "itmpl_v"})
	e.sim.PublishTemplateVersion("itmpl_v")
	fresh := e.create(personatest.InquiryParams{ReferenceID: "user-new", TemplateID: "itmpl_v"})

	p := wantProblem(t, e.post(old, "full"), http.StatusConflict, CodeInquiryTooOld)
	if !strings.Contains(p.FallbackURL, "reference-id=user-old") {
		t.Errorf("stale inquiry's refusal without the fallback: %+v", p)
	}
	decodeSession(t, e, fresh, e.post(fresh, "full"))
	var v InquiryView
	if r := e.get(old, "full"); json.Unmarshal(r.body, &v) != nil || v.Reason != ReasonStaleVersion {
		t.Errorf("GET stale inquiry: %s", r.body)
	}
	if n := e.sim.PathRequests("/api/v1/inquiry-templates/itmpl_v"); n != 1 {
		t.Errorf("template asked %d times for 3 checks, want 1 (cached)", n)
	}
}

// TestResumeRevivalIsRecorded: resuming an expired inquiry (RESUMER_RESUME_EXPIRED_WITHIN, or
// the click on a win-back link) makes it pending at Persona with a new expiry and no webhook
// (PERSONA.md §6); the API records that, so the store and its reminder schedule follow.
func TestResumeRevivalIsRecorded(t *testing.T) {
	e := newEnv(t, &envConfig{api: func(o *Options) { o.ExpiredWithin = time.Hour }})
	id := e.create(personatest.InquiryParams{ReferenceID: "user-1"})
	if err := e.sim.Expire(id); err != nil {
		t.Fatal(err)
	}
	e.sync()
	if inq, _ := e.store.Inquiry(t.Context(), id); inq.Status != "expired" {
		t.Fatalf("status %s before the resume, want expired", inq.Status)
	}
	decodeSession(t, e, id, e.post(id, "full"))
	simInq, _ := e.sim.Inquiry(id)
	inq, err := e.store.Inquiry(t.Context(), id)
	if err != nil || inq.Status != "pending" || !inq.ExpiresAt.Equal(simInq.ExpiresAt) {
		t.Errorf("store after the resume: %+v, %v; want pending until %v", inq, err, simInq.ExpiresAt)
	}
}
