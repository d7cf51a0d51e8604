package api

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/persona/personatest"
)

// wantPage checks a /r/ answer is page p: its status, an HTML body with p's heading, the
// headers every page carries, and Retry-After exactly when the user should wait.
func wantPage(t *testing.T, r response, p page) {
	t.Helper()
	if r.status != p.status {
		t.Fatalf("status %d, want %d (%s): %s", r.status, p.status, p.name, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	heading := strings.ReplaceAll(p.Heading, "'", "&#39;")
	if !strings.Contains(string(r.body), "<h1>"+heading+"</h1>") {
		t.Errorf("page %s lacks its heading: %s", p.name, r.body)
	}
	for h, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
		"X-Content-Type-Options": "nosniff"} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s %q, want %q", h, got, want)
		}
	}
	if !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", r.header.Get("Content-Security-Policy"))
	}
	wait := p.status == http.StatusTooManyRequests || p.status == http.StatusServiceUnavailable
	if (r.header.Get("Retry-After") != "") != wait {
		t.Errorf("Retry-After %q on a %d page", r.header.Get("Retry-After"), p.status)
	}
}

// TestRedirectHappyPath follows a link: 302 to the hosted flow with a token the simulator
// accepts, and the headers that keep the token out of caches and Referers.
func TestRedirectHappyPath(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create(personatest.InquiryParams{ReferenceID: "user-1"})
	token := e.link(id, time.Hour)
	r := e.follow(token)
	if r.status != http.StatusSeeOther {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	for h, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s %q, want %q", h, got, want)
		}
	}
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), e.sim.URL()+"/verify?") {
		t.Fatalf("Location %q: %v", r.header.Get("Location"), err)
	}
	q := loc.Query()
	if q.Get("inquiry-id") != id || q.Get("redirect-uri") != testRedirectURI || !e.sim.ValidSession(id, q.Get("session-token")) {
		t.Fatalf("Location query %v: no valid session at the simulator", q)
	}
	// The browser lands in the (simulated) hosted flow.
	resp, err := http.Get(loc.String())
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("hosted flow: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := e.sim.PathRequests(resumePath(id)); n != 1 {
		t.Errorf("persona resumed %d times, want 1", n)
	}
}

// TestRedirectFailurePages checks each failure of /r/: tampered, garbage and foreign links
// 400; an expired link, a finished (replayed after completion), unknown or expired inquiry
// 410; Persona down 503. None echoes the link or the inquiry id, and none mints.
func TestRedirectFailurePages(t *testing.T) {
	e := newEnv(t, nil)
	live := e.create(personatest.InquiryParams{})
	completed := e.create(personatest.InquiryParams{})
	replayed := e.link(completed, time.Hour)
	if r := e.follow(replayed); r.status != http.StatusSeeOther {
		t.Fatalf("first click: %d", r.status)
	}
	if err := e.sim.Complete(completed); err != nil {
		t.Fatal(err)
	}
	expired := e.sim.CreateInquiry(personatest.InquiryParams{}).ID
	if err := e.sim.Expire(expired); err != nil {
		t.Fatal(err)
	}
	e.sync()
	good := e.link(live, time.Hour)
	tampered := []byte(good)
	tampered[len(tampered)/2] ^= 1
	if tampered[len(tampered)/2] == '/' || tampered[len(tampered)/2] == '.' {
		tampered[len(tampered)/2] = 'A'
	}
	foreign := link.Signer{Secret: []byte(strings.Repeat("x", 32))}.Token(live, "1h", e.sim.Now().Add(time.Hour))
	for _, tc := range []struct {
		name  string
		token string
		page  page
	}{
		{"tampered", string(tampered), pageInvalidLink},
		{"garbage", "not-a-link", pageInvalidLink},
		{"foreign secret", foreign, pageInvalidLink},
		{"too long", strings.Repeat("A", maxLinkTokenLen+1), pageInvalidLink},
		{"bad inquiry id", e.signer.Token("inq_<script>", "1h", e.sim.Now().Add(time.Hour)), pageInvalidLink},
		{"expired link", e.link(live, -time.Second), pageLinkExpired},
		{"replayed after completion", replayed, pageFinished},
		{"unknown inquiry", e.link("inq_unknown1", time.Hour), pageFinished},
		{"expired inquiry", e.link(expired, time.Hour), pageInquiryExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.follow(tc.token)
			wantPage(t, r, tc.page)
			for _, secret := range []string{tc.token, live, completed, expired, "inq_<script>", "<script>"} {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("page echoes %q", secret)
				}
			}
		})
	}
	if n := e.sim.Requests(); n != 1 {
		t.Errorf("persona called %d times, want only for the first click", n)
	}

	t.Run("persona down", func(t *testing.T) {
		e.sim.FailNext(100, http.StatusServiceUnavailable)
		defer e.sim.FailNext(0, 0)
		wantPage(t, e.follow(good), pageUnavailable)
	})
	t.Run("head does not mint", func(t *testing.T) {
		before := e.sim.Requests()
		req, _ := http.NewRequest(http.MethodHead, e.http.URL+"/r/"+good, nil)
		if r := e.send(req); r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("HEAD of a good link: %d %v", r.status, r.header)
		}
		req, _ = http.NewRequest(http.MethodHead, e.http.URL+"/r/"+string(tampered), nil)
		if r := e.send(req); r.status != http.StatusBadRequest {
			t.Errorf("HEAD of a tampered link: %d", r.status)
		}
		if n := e.sim.Requests() - before; n != 0 {
			t.Errorf("HEAD called persona %d times", n)
		}
	})
}

// TestRedirectDisabled checks that without a signer /r/ is not served at all.
func TestRedirectDisabled(t *testing.T) {
	e := newEnv(t, &envConfig{api: func(o *Options) { o.Redirect = nil }})
	id := e.create(personatest.InquiryParams{})
	if r := e.follow(e.link(id, time.Hour)); r.status != http.StatusNotFound {
		t.Errorf("status %d, want the mux's 404", r.status)
	}
}

// TestRedisDown checks that without Redis the API answers 503 service_unavailable with
// Retry-After, /r/ its unavailable page, and nothing is minted (the limits fail closed).
func TestRedisDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	e := newEnv(t, &envConfig{rdb: rdb})
	id := e.create(personatest.InquiryParams{})
	if r := e.get(id, "full"); r.status != http.StatusOK {
		t.Fatalf("with redis up: %d %s", r.status, r.body)
	}
	srv.Stop()
	wantProblem(t, e.get(id, "full"), http.StatusServiceUnavailable, CodeServiceUnavailable)
	wantProblem(t, e.post(id, "full"), http.StatusServiceUnavailable, CodeServiceUnavailable)
	wantPage(t, e.follow(e.link(id, time.Hour)), pageUnavailable)
	if n := e.sim.Requests(); n != 0 {
		t.Errorf("persona called %d times without redis", n)
	}
}

// TestLinkGetNeverMints: any number of GETs and HEADs of a good link (what mail scanners do)
// make no Persona call and count nothing against the mint limit; the button then works.
func TestLinkGetNeverMints(t *testing.T) {
	e := newEnv(t, &envConfig{api: func(o *Options) { o.MintLimit = 1 }})
	id := e.create(personatest.InquiryParams{})
	token := e.link(id, time.Hour)
	for range 5 {
		wantPage(t, e.open(token), pageContinue)
		req, _ := http.NewRequest(http.MethodHead, e.http.URL+"/r/"+token, nil)
		if r := e.send(req); r.status != http.StatusOK || len(r.body) != 0 {
			t.Fatalf("HEAD: %d, %d bytes", r.status, len(r.body))
		}
	}
	if n := e.sim.Requests(); n != 0 {
		t.Fatalf("GET and HEAD made %d Persona calls", n)
	}
	if r := e.follow(token); r.status != http.StatusSeeOther {
		t.Fatalf("the button after five scans: %d %s", r.status, r.body)
	}
	if n := e.sim.PathRequests(resumePath(id)); n != 1 {
		t.Errorf("persona resumed %d times, want 1", n)
	}
}

// TestLinkContinueRefusesForgedForms: the button's POST needs the form token of this very
// link's page, unexpired, and no cross-site origin; each refusal shows the page again with a
// fresh token (which works) and mints nothing.
func TestLinkContinueRefusesForgedForms(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create(personatest.InquiryParams{})
	other := e.create(personatest.InquiryParams{})
	token, otherToken := e.link(id, time.Hour), e.link(other, time.Hour)
	good := formToken(e.open(token))
	if good == "" {
		t.Fatal("the continue page has no form token")
	}
	crossSite := func(origin string) response {
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/r/"+token,
			strings.NewReader(url.Values{"form_token": {good}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", origin)
		return e.send(req)
	}
	for _, tc := range []struct {
		name string
		send func() response
	}{
		{"no token", func() response { return e.press(token, "") }},
		{"garbage token", func() response { return e.press(token, "123.abc") }},
		{"token of another link", func() response { return e.press(token, formToken(e.open(otherToken))) }},
		{"token signed with another secret", func() response {
			return e.press(token, link.Signer{Secret: []byte(strings.Repeat("x", 32))}.FormToken(token, e.sim.Now().Add(time.Minute)))
		}},
		{"expired token", func() response {
			return e.press(token, e.signer.FormToken(token, e.sim.Now().Add(-time.Second)))
		}},
		{"cross-site", func() response { return crossSite("https://evil.example") }},
		{"huge body", func() response { return e.press(token, strings.Repeat("9", 4096)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.send()
			wantPage(t, r, pageFormExpired)
			if formToken(r) == "" {
				t.Error("the refusal page has no fresh form")
			}
		})
	}
	if n := e.sim.Requests(); n != 0 {
		t.Fatalf("refused forms made %d Persona calls", n)
	}
	refused := e.press(token, "")
	if r := e.press(token, formToken(refused)); r.status != http.StatusSeeOther {
		t.Errorf("pressing the refusal page's button: %d", r.status)
	}
	// A form token is not a link: it does not open another inquiry.
	if r := e.press(otherToken, good); r.status != http.StatusForbidden {
		t.Errorf("form token of one link pressed on another: %d", r.status)
	}
}

// TestSingleUseLinks: with SingleUseLinks a link mints once, concurrent presses included;
// afterwards GET and POST show the used page. A press that Persona refuses does not use the
// link up.
func TestSingleUseLinks(t *testing.T) {
	e := newEnv(t, &envConfig{api: func(o *Options) { o.SingleUseLinks = true }})
	id := e.create(personatest.InquiryParams{})
	token := e.link(id, time.Hour)
	ft := formToken(e.open(token))

	e.sim.FailNext(100, http.StatusServiceUnavailable)
	wantPage(t, e.press(token, ft), pageUnavailable)
	e.sim.FailNext(0, 0)
	wantPage(t, e.open(token), pageContinue) // still usable

	results := make(chan int, 4)
	for range 4 {
		go func() { results <- e.press(token, ft).status }()
	}
	redirects := 0
	for range 4 {
		switch s := <-results; s {
		case http.StatusSeeOther:
			redirects++
		case http.StatusGone:
		default:
			t.Errorf("concurrent press: %d", s)
		}
	}
	if redirects != 1 {
		t.Errorf("%d presses minted, want exactly 1", redirects)
	}
	wantPage(t, e.open(token), pageLinkUsed)
	wantPage(t, e.press(token, ft), pageLinkUsed)
	// Another link of the same inquiry (the next reminder) still works.
	if r := e.follow(e.signer.Token(id, "6h", e.sim.Now().Add(time.Hour))); r.status != http.StatusSeeOther {
		t.Errorf("a fresh link after the used one: %d", r.status)
	}
}
