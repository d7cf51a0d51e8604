package api

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/persona/personatest"
)

// chromium runs Debian's chromium headless on url with extra flags (--dump-dom,
// --screenshot=...) and returns its standard output. The flags keep it off the network
// beyond the URL (this machine has none) and out of any profile.
func chromium(t *testing.T, bin, url string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--window-size=800,600", "--user-data-dir=" + t.TempDir()}, flags...)
	out, err := exec.CommandContext(ctx, bin, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", flags, err)
	}
	return string(out)
}

// TestRedirectPagesInBrowser opens the /r/ pages in a real headless browser: the happy path
// follows the 302 into the (simulated) hosted flow, and each failure page renders its
// heading and nothing from the link. A screenshot of every page is kept as a test artefact
// (go test -artifacts -outputdir=DIR keeps them; see testing.T.ArtifactDir). Skipped when
// chromium is not installed (apt-get install chromium).
func TestRedirectPagesInBrowser(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (Debian package chromium)")
	}
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
	if r := e.follow(e.link(limited, time.Hour)); r.status != http.StatusFound {
		t.Fatalf("spending the mint limit: %d", r.status)
	}
	good := e.link(live, time.Hour)
	dir := t.ArtifactDir()

	t.Run("redirect", func(t *testing.T) {
		dom := chromium(t, bin, e.http.URL+"/r/"+good, "--dump-dom")
		if !strings.Contains(dom, "resumed in the simulated hosted flow") {
			t.Errorf("the browser did not land in the hosted flow: %s", dom)
		}
		if n := e.sim.PathRequests(resumePath(live)); n != 1 {
			t.Errorf("persona resumed %d times, want 1", n)
		}
	})
	for _, tc := range []struct {
		token string
		page  page
		setup func()
	}{
		{"AAAA" + good[4:], pageInvalidLink, nil},
		{e.link(live, -time.Minute), pageLinkExpired, nil},
		{e.link(finished, time.Hour), pageFinished, nil},
		{e.link(expired, time.Hour), pageInquiryExpired, nil},
		{e.link(limited, time.Hour), pageTooManyAttempts, nil},
		{e.link(down, time.Hour), pageUnavailable, func() { e.sim.FailNext(1000, http.StatusServiceUnavailable) }},
	} {
		t.Run(tc.page.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			url := e.http.URL + "/r/" + tc.token
			dom := chromium(t, bin, url, "--dump-dom")
			heading := strings.ReplaceAll(tc.page.Heading, "'", "&#39;")
			if !strings.Contains(dom, heading) && !strings.Contains(dom, tc.page.Heading) {
				t.Errorf("page %s does not show %q: %s", tc.page.name, tc.page.Heading, dom)
			}
			if strings.Contains(dom, tc.token) || strings.Contains(dom, "inq_") {
				t.Errorf("page %s shows the link or an inquiry id", tc.page.name)
			}
			shot := filepath.Join(dir, tc.page.name+".png")
			chromium(t, bin, url, "--screenshot="+shot)
			if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
				t.Errorf("screenshot %s: %v", shot, err)
			}
			t.Logf("screenshot: %s", shot)
		})
	}
}
