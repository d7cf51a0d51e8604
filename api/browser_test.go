package api

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/brand"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona/personatest"
)

// TestLinkButtonInBrowser is what a mail scanner and then the user do with a /r/ link, in a
// real headless browser: GET (as scanners fetch every link) and HEAD make no Persona call;
// the page shows the brand and a "Continue verification" button; pressing it mints once and
// lands in the (simulated) hosted flow, passing the page's CSP form-action and the cross-origin
// check. With single-use links the same link then shows the used page with the brand's
// fresh-link offer. Skipped when chromium is not installed.
func TestLinkButtonInBrowser(t *testing.T) {
	bin := testenv.Chromium(t)
	brands, err := brand.New([]brand.Brand{{ID: "acme", Name: "Acme Bank", Color: "#0b5394",
		SupportEmail: "help@acme.example", FreshLinkURL: "https://app.acme.example/verify/resend"}}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, &envConfig{api: func(o *Options) { o.SingleUseLinks = true; o.Brands = brands }})
	id := e.create(personatest.InquiryParams{ReferenceID: "acme-7"})
	token := e.link(id, time.Hour)
	url := e.http.URL + "/r/" + token

	// The scanner: GET with a plain client, GET in a browser, HEAD.
	if r := e.open(token); r.status != http.StatusOK {
		t.Fatalf("GET: %d", r.status)
	}
	dom := testenv.RunChromium(t, bin, url, "--dump-dom")
	req, _ := http.NewRequest(http.MethodHead, url, nil)
	if r := e.send(req); r.status != http.StatusOK {
		t.Fatalf("HEAD: %d", r.status)
	}
	if n := e.sim.Requests(); n != 0 {
		t.Fatalf("opening the link made %d Persona calls, want none", n)
	}
	for _, want := range []string{"Acme Bank", "Continue your verification", "Continue verification", "help@acme.example"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %q: %s", want, dom)
		}
	}

	dir := t.ArtifactDir()
	shoot := func(name string) {
		shot := filepath.Join(dir, name+".png")
		testenv.RunChromium(t, bin, url, "--screenshot="+shot)
		if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s: %v", shot, err)
		}
		t.Logf("screenshot: %s", shot)
	}
	shoot("branded_continue")

	// The user.
	b := testenv.StartBrowser(t, bin)
	b.Navigate(url)
	if text := b.Text(); !strings.Contains(text, "Acme Bank") || !strings.Contains(text, "Continue verification") {
		t.Fatalf("page text: %q", text)
	}
	b.Click("button[type=submit]")
	b.WaitFor("document.body && document.body.innerText.includes('resumed in the simulated hosted flow')")
	if u := b.URL(); !strings.HasPrefix(u, e.sim.URL()+"/verify?") || !strings.Contains(u, "session-token=") {
		t.Errorf("landed on %q, want the hosted flow with a session token", u)
	}
	if n := e.sim.PathRequests(resumePath(id)); n != 1 {
		t.Errorf("persona resumed %d times, want 1 (the button)", n)
	}

	// Single use: the same link again shows the used page, offering a fresh e-mail.
	b.Navigate(url)
	text := b.Text()
	if !strings.Contains(text, pageLinkUsed.Heading) || !strings.Contains(text, "Send me a fresh e-mail") {
		t.Errorf("reopened single-use link: %q", text)
	}
	shoot("branded_link_used")
	if n := e.sim.Requests(); n != 1 {
		t.Errorf("persona called %d times in all, want 1", n)
	}
}

// TestRedirectPagesInBrowser opens the /r/ pages in a real headless browser: each failure
// page renders its heading and nothing from the link. A screenshot of every page is kept as
// a test artefact (go test -artifacts -outputdir=DIR keeps them; see testing.T.ArtifactDir).
// Skipped when chromium is not installed (apt-get install chromium).
func TestRedirectPagesInBrowser(t *testing.T) {
	bin := testenv.Chromium(t)
	e := newEnv(t, &envConfig{api: func(o *Options) { o.MintLimit = 1 }})
	live := e.create(personatest.InquiryParams{})
	limited := e.create(personatest.InquiryParams{})
	down := e.create(personatest.InquiryParams{})
	finished := e.create(personatest.InquiryParams{})
	if err := e.sim.Complete(finished); err != nil {
		t.Fatal(err)
	}
	expired := e.create(personatest.InquiryParams{})
	if err := e.sim.Expire(expired); err != nil {
		t.Fatal(err)
	}
	e.sync()
	if r := e.follow(e.link(limited, time.Hour)); r.status != http.StatusSeeOther {
		t.Fatalf("spending the mint limit: %d", r.status)
	}
	good := e.link(live, time.Hour)
	dir := t.ArtifactDir()

	for _, tc := range []struct {
		token string
		page  page
		press bool
		setup func()
	}{
		{good, pageContinue, false, nil},
		{"AAAA" + good[4:], pageInvalidLink, false, nil},
		{e.link(live, -time.Minute), pageLinkExpired, false, nil},
		{e.link(finished, time.Hour), pageFinished, false, nil},
		{e.link(expired, time.Hour), pageInquiryExpired, false, nil},
		{e.link(limited, time.Hour), pageTooManyAttempts, true, nil},
		{e.link(down, time.Hour), pageUnavailable, true, func() { e.sim.FailNext(1000, http.StatusServiceUnavailable) }},
	} {
		t.Run(tc.page.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			b := testenv.StartBrowser(t, bin)
			b.Navigate(e.http.URL + "/r/" + tc.token)
			if tc.press {
				b.Click("button[type=submit]")
				b.WaitFor("document.querySelector('h1') && document.querySelector('h1').innerText !== " + jsString(pageContinue.Heading))
			}
			text := b.Text()
			if !strings.Contains(text, tc.page.Heading) {
				t.Errorf("page %s does not show %q: %s", tc.page.name, tc.page.Heading, text)
			}
			html := string(b.Eval("document.documentElement.outerHTML"))
			if strings.Contains(text, tc.token) || strings.Contains(html, "inq_") {
				t.Errorf("page %s shows the link or an inquiry id", tc.page.name)
			}
			if tc.press {
				return // a screenshot would open the link afresh
			}
			shot := filepath.Join(dir, tc.page.name+".png")
			testenv.RunChromium(t, bin, e.http.URL+"/r/"+tc.token, "--screenshot="+shot)
			if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
				t.Errorf("screenshot %s: %v", shot, err)
			}
			t.Logf("screenshot: %s", shot)
		})
	}
	e.sim.FailNext(0, 0)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
