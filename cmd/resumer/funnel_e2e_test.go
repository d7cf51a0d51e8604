package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/mailcatch"
	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/notify"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/report"
	"github.com/resumer/resumer/state"
)

// TestFunnelEndToEnd runs the whole pipeline for a small population with a 30 % holdout:
// the Persona simulator's signed webhooks through the receiver, the stream and the worker
// into Redis; the notifier sending reminders to an SMTP catcher (and skipping the held-out
// ones); then, after every resumer process restarted, the users completing (and being
// approved) or letting their inquiry expire. `resumer report --json` then equals the truth
// exactly, the held-out users got no e-mail, and the funnel metrics are on /metrics.
func TestFunnelEndToEnd(t *testing.T) {
	const n = 40
	ns := testenv.NATS(t)
	_, prefix := testenv.Redis(t)
	mail := mailcatch.Start(t, mailcatch.Options{})
	const secret = "wbhsec_funnel_e2e"

	// The simulator delivers to a proxy that follows the app across its restart.
	var target atomic.Pointer[url.URL]
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := target.Load()
		if u == nil {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	sim := personatest.NewServer(t, personatest.Options{
		WebhookURLs: []string{proxy.URL + "/webhooks/persona"}, WebhookSecret: secret, RateLimit: 1_000_000,
		WebhookRetryDelays: []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second},
	})
	stream := strings.ToUpper(strings.ReplaceAll(prefix, "-", "_"))
	environ := map[string]string{
		"RESUMER_WEBHOOK_SECRETS": secret,
		"RESUMER_NATS_URL":        ns.ClientURL(),
		"RESUMER_REDIS_URL":       testenv.RedisURL(t),
		"RESUMER_REDIS_PREFIX":    prefix,
		"RESUMER_STREAM":          stream,
		"RESUMER_DLQ_STREAM":      stream + "_DLQ",
		"RESUMER_PERSONA_API_URL": sim.URL(),
		"RESUMER_PERSONA_API_KEY": sim.APIKey(),
		"RESUMER_SMTP_URL":        mail.URL(),
		"RESUMER_MAIL_FROM":       "Acme <verify@acme.example>",
		"RESUMER_HOSTED_FLOW_URL": sim.URL() + "/verify",
		// A stage as long as the simulator's 24 h expiry is due the moment an inquiry starts.
		"RESUMER_REMIND_BEFORE":   "24h",
		"RESUMER_NOTIFY_INTERVAL": "200ms",
		"RESUMER_HOLDOUT_PERCENT": "30",
		"RESUMER_HOLDOUT_SALT":    "funnel-e2e",
	}
	start := func() (map[string]string, func() error) {
		urls, stop, _, _ := startApp(t, []string{"serve", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, environ)
		u, err := url.Parse(urls["http"])
		if err != nil {
			t.Fatal(err)
		}
		target.Store(u)
		waitFor(t, 20*time.Second, "/readyz", func() bool {
			code, _ := get(t, urls["admin"]+"/readyz")
			return code == http.StatusOK
		})
		return urls, stop
	}
	readReport := func() report.Report {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"report", "--since", "1d", "--json"}, env(environ), nil, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		var r report.Report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	_, stop := start()

	holdout := notify.Holdout{Percent: 30, Salt: "funnel-e2e"}
	var ids []string
	held := map[string]bool{}
	for i := range n {
		inq := sim.CreateInquiry(personatest.InquiryParams{ReferenceID: fmt.Sprint("e2e-", i), EmailAddress: fmt.Sprintf("user%d@example.com", i)})
		if err := sim.Start(inq.ID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, inq.ID)
		held[inq.ID] = holdout.HeldOut(inq.ID)
	}
	nHeld := 0
	for _, h := range held {
		if h {
			nHeld++
		}
	}
	if nHeld == 0 || nHeld == n {
		t.Fatalf("%d of %d held out: the population needs both groups", nHeld, n)
	}
	waitFor(t, 60*time.Second, "every reminder sent or held out", func() bool {
		r := readReport()
		return r.Overall.Reminded.Count+r.Overall.HeldOut.Count == n
	})

	// Every process restarts.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	target.Store(nil)
	urls, stop := start()

	// Reminded users complete with 60 %, held-out ones with 20 %; half of those completing
	// are approved; the rest let the inquiry expire.
	rng := rand.New(rand.NewPCG(7, 16))
	want := map[string]int64{}
	for _, id := range ids {
		g, p := state.GroupReminded, 0.6
		if held[id] {
			g, p = state.GroupHeldOut, 0.2
		}
		want[g+"/inquiry"]++
		if rng.Float64() < p {
			if err := sim.Complete(id); err != nil {
				t.Fatal(err)
			}
			want[g+"/completed"]++
			want[g+"/resumed"]++
			if rng.IntN(2) == 0 {
				if err := sim.Approve(id); err != nil {
					t.Fatal(err)
				}
				want[g+"/approved"]++
			}
		} else {
			if err := sim.Expire(id); err != nil {
				t.Fatal(err)
			}
			want[g+"/expired"]++
		}
	}
	var r report.Report
	waitFor(t, 60*time.Second, "every outcome in the report", func() bool {
		r = readReport()
		got := r.Overall.Reminded.Steps[state.StepCompleted] + r.Overall.HeldOut.Steps[state.StepCompleted] +
			r.Overall.Reminded.Steps[state.StepExpired] + r.Overall.HeldOut.Steps[state.StepExpired] +
			r.Overall.Reminded.Steps[state.StepApproved] + r.Overall.HeldOut.Steps[state.StepApproved]
		return got == want["reminded/completed"]+want["held_out/completed"]+want["reminded/expired"]+
			want["held_out/expired"]+want["reminded/approved"]+want["held_out/approved"]
	})
	got := map[string]int64{
		"reminded/inquiry": r.Overall.Reminded.Count, "held_out/inquiry": r.Overall.HeldOut.Count,
	}
	for _, g := range []struct {
		name string
		g    report.Group
	}{{state.GroupReminded, r.Overall.Reminded}, {state.GroupHeldOut, r.Overall.HeldOut}} {
		for step, v := range g.g.Steps {
			if v != 0 {
				got[g.name+"/"+step] = v
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("report funnel = %v\nwant %v", got, want)
	}
	if len(r.Rows) != 1 || r.Rows[0].Key != "24h" || r.Rows[0].Reminded.Count != int64(n-nHeld) || r.Rows[0].HeldOut.Count != int64(nHeld) {
		t.Errorf("rows = %+v, want the 24h stage with %d reminded and %d held out", r.Rows, n-nHeld, nHeld)
	}
	if got := len(mail.Messages()); got != n-nHeld {
		t.Errorf("%d e-mails caught, want %d (none to the held-out users)", got, n-nHeld)
	}
	_, metrics := get(t, urls["admin"]+"/metrics")
	if !strings.Contains(metrics, `resumer_funnel_total{channel="email",group="reminded",link_mode="session-token",outcome="completed",stage="24h"}`) {
		t.Errorf("/metrics lacks the funnel's completions")
	}
	if code, page := get(t, urls["admin"]+"/report?since=1d"); code != http.StatusOK || !strings.Contains(page, "<svg") {
		t.Errorf("/report: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
