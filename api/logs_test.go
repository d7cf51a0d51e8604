package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resumer/resumer/persona/personatest"
)

// TestNoSecretsInLogs runs a full flow with debug logging (the API and the Persona client
// share the captured logger) and checks that no session token, hosted flow URL, redirect link
// or e-mail address reached a log line (PERSONA.md §8, DESIGN.md decision 7).
func TestNoSecretsInLogs(t *testing.T) {
	e := newEnv(t, &envConfig{api: func(o *Options) { o.MintLimit = 3 }})
	const email = "jane.doe@example.com"
	id := e.create(personatest.InquiryParams{ReferenceID: "acme-jane", EmailAddress: email, NameFirst: "Jane"})
	if err := e.sim.Start(id); err != nil {
		t.Fatal(err)
	}
	e.sync()

	var secrets []string
	v := decodeSession(t, e, id, e.post(id, "acme"))
	secrets = append(secrets, v.SessionToken, v.HostedFlowURL)
	if err := e.sim.UseSession(id, v.SessionToken); err != nil {
		t.Fatal(err)
	}
	if r := e.get(id, "full"); r.status != http.StatusOK {
		t.Fatalf("get: %d", r.status)
	}
	link := e.link(id, time.Hour)
	r := e.follow(link)
	if r.status != http.StatusSeeOther {
		t.Fatalf("redirect: %d", r.status)
	}
	loc, _ := url.Parse(r.header.Get("Location"))
	secrets = append(secrets, link, r.header.Get("Location"), loc.Query().Get("session-token"))
	e.sim.FailNext(100, http.StatusServiceUnavailable)
	wantProblem(t, e.post(id, "full"), http.StatusServiceUnavailable, CodeUpstreamUnavailable)
	e.sim.FailNext(0, 0)
	expiredLink := e.link(id, -time.Minute)
	secrets = append(secrets, expiredLink)
	wantPage(t, e.follow(expiredLink), pageLinkExpired)
	wantProblem(t, e.post(id, "revoked"), http.StatusUnauthorized, CodeUnauthorized)
	if err := e.sim.Complete(id); err != nil {
		t.Fatal(err)
	}
	e.sync()
	wantPage(t, e.follow(link), pageFinished)

	logs := e.logs.String()
	lines := 0
	for sc := bufio.NewScanner(strings.NewReader(logs)); sc.Scan(); lines++ {
		var entry map[string]any
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
	}
	if lines < 8 || !strings.Contains(logs, `"level":"DEBUG"`) || !strings.Contains(logs, `"route":"GET /r/{token}"`) {
		t.Fatalf("expected debug logs of every request, got %d lines:\n%s", lines, logs)
	}
	for _, jwt := range []string{v.SessionToken, loc.Query().Get("session-token")} {
		secrets = append(secrets, strings.Split(jwt, ".")[1:]...) // claims and signature alone
	}
	for _, s := range append(secrets, email, "jane.doe", "Jane", "session-token", "session_token") {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("logs contain %q:\n%s", s, logs)
		}
	}
}

// TestMetrics checks the API's series and that their labels are the route patterns, never
// a path or an id.
func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create(personatest.InquiryParams{})
	decodeSession(t, e, id, e.post(id, "full"))
	e.get(id, "full")
	e.get("inq_unknown1", "full")
	e.follow(e.link(id, time.Hour))
	e.follow("garbage")

	for _, tc := range []struct {
		route, code string
		want        float64
	}{
		{RouteSessions, "201", 1},
		{RouteInquiry, "200", 1},
		{RouteInquiry, "404", 1},
		{RouteRedirect, "200", 1},
		{RouteLinkContinue, "303", 1},
		{RouteRedirect, "400", 1},
	} {
		if got := testutil.ToFloat64(e.server.metrics.requests.WithLabelValues(tc.route, tc.code)); got != tc.want {
			t.Errorf("resumer_api_requests_total{route=%q,code=%q} = %v, want %v", tc.route, tc.code, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(e.server.metrics.minted); got != 2 {
		t.Errorf("resumer_api_sessions_minted_total = %v, want 2", got)
	}
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		seen[f.GetName()] = true
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "inq_") || strings.Contains(l.GetValue(), "garbage") {
					t.Errorf("%s has an unbounded label %s=%q", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	for _, name := range []string{"resumer_api_requests_total", "resumer_api_request_duration_seconds",
		"resumer_api_sessions_minted_total"} {
		if !seen[name] {
			t.Errorf("%s not registered", name)
		}
	}
}
