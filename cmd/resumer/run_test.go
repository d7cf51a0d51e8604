package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/webhook"
)

// waitFor polls until cond is true or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var listenRE = regexp.MustCompile(`resumer: (\w+) listening on (http://\S+)`)

// startApp runs `resumer <args>` in the background and returns the URLs of its listeners by
// name ("http", "admin"), a function that stops it and returns run's error, its stderr and its
// stdout.
func startApp(t *testing.T, args []string, environ map[string]string) (map[string]string, func() error, *testenv.Buffer, *testenv.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &testenv.Buffer{}, &testenv.Buffer{}
	done := make(chan struct{})
	var runErr error
	go func() {
		runErr = run(ctx, args, env(environ), strings.NewReader(""), stdout, stderr)
		close(done)
	}()
	stop := func() error {
		cancel()
		select {
		case <-done:
			return runErr
		case <-time.After(30 * time.Second):
			t.Fatal("run did not return within 30s of cancellation")
			return nil
		}
	}
	t.Cleanup(func() { cancel(); <-done })
	urls := map[string]string{}
	waitFor(t, 20*time.Second, "listeners", func() bool {
		for _, m := range listenRE.FindAllStringSubmatch(stdout.String(), -1) {
			urls[m[1]] = m[2]
		}
		select {
		case <-done:
			t.Fatalf("run returned early: %v\nstderr:\n%s", runErr, stderr.String())
		default:
		}
		return urls["admin"] != "" && (urls["http"] != "" || !strings.Contains(strings.Join(args, " "), "webhook"))
	})
	return urls, stop, stderr, stdout
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeEndToEnd runs the whole program on :0 addresses against an embedded NATS and the
// test Redis: a signed event is accepted, counted in /metrics, applied by the worker and
// visible through `resumer inquiry show --json`; an unsigned one is refused.
func TestServeEndToEnd(t *testing.T) {
	ns := testenv.NATS(t)
	_, prefix := testenv.Redis(t)
	const secret = "wbhsec_test_e2e"
	environ := map[string]string{
		"RESUMER_WEBHOOK_SECRETS": secret,
		"RESUMER_NATS_URL":        ns.ClientURL(),
		"RESUMER_REDIS_URL":       testenv.RedisURL(t),
		"RESUMER_REDIS_PREFIX":    prefix,
		"RESUMER_STREAM":          strings.ToUpper(strings.ReplaceAll(prefix, "-", "_")),
		"RESUMER_DLQ_STREAM":      strings.ToUpper(strings.ReplaceAll(prefix, "-", "_")) + "_DLQ",
		"RESUMER_LOG_LEVEL":       "debug",
	}
	urls, stop, stderr, _ := startApp(t, []string{"serve", "--roles", "webhook,worker", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, environ)

	waitFor(t, 20*time.Second, "/readyz", func() bool {
		code, _ := get(t, urls["admin"]+"/readyz")
		return code == http.StatusOK
	})
	if code, _ := get(t, urls["admin"]+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}

	body, err := os.ReadFile("../../testdata/inquiry.started.json")
	if err != nil {
		t.Fatal(err)
	}
	post := func(sig string) int {
		req, _ := http.NewRequest(http.MethodPost, urls["http"]+"/webhooks/persona", bytes.NewReader(body))
		if sig != "" {
			req.Header.Set("Persona-Signature", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(webhook.Sign(body, []byte(secret), time.Now())); code != http.StatusOK {
		t.Fatalf("signed event: %d\n%s", code, stderr.String())
	}
	if code := post(""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned event: %d, want 401", code)
	}
	if code := post(webhook.Sign(body, []byte("wbhsec_wrong"), time.Now())); code != http.StatusUnauthorized {
		t.Fatalf("wrongly signed event: %d, want 401", code)
	}

	_, metrics := get(t, urls["admin"]+"/metrics")
	for _, want := range []string{
		`resumer_webhook_requests_total{outcome="accepted"} 1`,
		`resumer_webhook_requests_total{outcome="unauthorized"} 2`,
		`resumer_build_info{version="dev"} 1`,
		`resumer_worker_consumer_pending`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The worker's inquiry gauges appear after its first refresh.
	waitFor(t, 20*time.Second, "the inquiry gauges in /metrics", func() bool {
		_, metrics := get(t, urls["admin"]+"/metrics")
		return strings.Contains(metrics, `resumer_inquiries{status="pending"}`) &&
			strings.Contains(metrics, `resumer_inquiries_expiring{within="1h"}`)
	})

	// The worker applies it; `resumer inquiry show --json` reflects it.
	var shown map[string]any
	waitFor(t, 20*time.Second, "inquiry in redis", func() bool {
		var out bytes.Buffer
		err := run(context.Background(), []string{"inquiry", "show", "inq_dev0000000000000000001", "--json"}, env(environ), nil, &out, io.Discard)
		if err != nil {
			return false
		}
		return json.Unmarshal(out.Bytes(), &shown) == nil
	})
	want := map[string]any{
		"inquiry_id":    "inq_dev0000000000000000001",
		"status":        "pending",
		"expires_at":    "2026-11-22T10:00:00Z",
		"reference_id":  "user-123",
		"template_id":   "itmpl_dev000000000000001",
		"last_event_id": "evt_dev00000000000000000001",
	}
	for k, v := range want {
		if shown[k] != v {
			t.Errorf("inquiry show: %s = %v, want %v", k, shown[k], v)
		}
	}
	if _, ok := shown["email_address"]; ok {
		t.Error("inquiry show --json revealed the e-mail without --reveal")
	}
	if strings.Contains(stderr.String(), "jane@example.com") {
		t.Error("the e-mail address reached the log")
	}

	if err := stop(); err != nil {
		t.Fatalf("run after cancellation: %v", err)
	}
	if !strings.Contains(stderr.String(), "resumer stopped") {
		t.Error("no clean shutdown logged")
	}
}

func TestServeRefusesMissingSecret(t *testing.T) {
	err := run(context.Background(), []string{"serve", "--roles", "webhook"}, env(nil), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "RESUMER_WEBHOOK_SECRETS") {
		t.Fatalf("err = %v, want one naming RESUMER_WEBHOOK_SECRETS", err)
	}
}

func TestWebhookSignCommand(t *testing.T) {
	body := `{"data":{}}`
	var out bytes.Buffer
	err := run(context.Background(), []string{"webhook", "sign", "--secret", "wbhsec_x", "--timestamp", "1700000000"}, env(nil), strings.NewReader(body), &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := "Persona-Signature: " + webhook.Sign([]byte(body), []byte("wbhsec_x"), time.Unix(1700000000, 0)) + "\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	if !strings.HasPrefix(out.String(), "Persona-Signature: t=1700000000,v1=") {
		t.Fatalf("unexpected header shape %q", out.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	if err := run(context.Background(), []string{"frobnicate"}, env(nil), nil, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown command accepted")
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, env(nil), nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "resumer ") {
		t.Fatalf("version: %q %v", out.String(), err)
	}
}

// TestDevAcceptsSimulatorWebhooks runs `resumer dev` as a newcomer would (embedded NATS,
// local Redis, the Persona simulator): an inquiry created and started at the simulator
// reaches Redis through signed webhooks.
func TestDevAcceptsSimulatorWebhooks(t *testing.T) {
	_, prefix := testenv.Redis(t)
	environ := map[string]string{
		"RESUMER_REDIS_URL":    testenv.RedisURL(t),
		"RESUMER_REDIS_PREFIX": prefix,
		"RESUMER_DEV_DATA_DIR": t.TempDir(),
		// A stage as long as the simulator's 24 h expiry is due the moment the inquiry
		// starts, so the whole pipeline, reminder included, runs in about a second.
		"RESUMER_REMIND_BEFORE":   "24h",
		"RESUMER_NOTIFY_INTERVAL": "200ms",
	}
	urls, stop, stderr, stdout := startApp(t, []string{"dev", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, environ)
	waitFor(t, 20*time.Second, "/readyz", func() bool {
		code, _ := get(t, urls["admin"]+"/readyz")
		return code == http.StatusOK
	})
	simURL := regexp.MustCompile(`Persona simulator (http://\S+)`).FindStringSubmatch(stdout.String())
	if simURL == nil {
		t.Fatalf("dev did not print the simulator's URL")
	}
	resp, err := http.Post(simURL[1]+"/_sim/inquiries", "application/json", strings.NewReader(`{"reference-id":"user-dev","email-address":"dev@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if created.Data.ID == "" {
		t.Fatalf("simulator created no inquiry: %d", resp.StatusCode)
	}
	resp, err = http.Post(simURL[1]+"/_sim/inquiries/"+created.Data.ID+"/start", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, 20*time.Second, "the started inquiry in redis", func() bool {
		var out bytes.Buffer
		err := run(context.Background(), []string{"inquiry", "show", created.Data.ID, "--json"}, env(environ), nil, &out, io.Discard)
		return err == nil && strings.Contains(out.String(), `"status": "pending"`)
	})
	// The notifier resumes the inquiry at the simulator and e-mails the link to the catcher.
	waitFor(t, 20*time.Second, "the reminder at /dev/mail", func() bool {
		code, page := get(t, urls["admin"]+"/dev/mail")
		return code == http.StatusOK && strings.Contains(page, "session-token")
	})
	// The link opens the simulator's hosted-flow stand-in, where its token is valid, not
	// the real Persona site.
	if _, page := get(t, urls["admin"]+"/dev/mail"); !strings.Contains(page, simURL[1]+"/verify?") || strings.Contains(page, "inquiry.withpersona.com") {
		t.Errorf("the reminder link does not open the simulator's /verify:\n%s", page)
	}
	if !strings.Contains(stderr.String(), "caught reminder e-mail") {
		t.Error("dev did not log the caught reminder")
	}
	if strings.Contains(stderr.String(), "dev@example.com") {
		t.Error("the e-mail address reached the log")
	}
	if err := stop(); err != nil {
		t.Fatalf("dev after cancellation: %v\n%s", err, stderr.String())
	}
}

// TestDevDemo plays `resumer dev --demo`: the stalled users with an e-mail address get a
// reminder; those who finished and the one without an address get none.
func TestDevDemo(t *testing.T) {
	_, prefix := testenv.Redis(t)
	environ := map[string]string{
		"RESUMER_REDIS_URL":    testenv.RedisURL(t),
		"RESUMER_REDIS_PREFIX": prefix,
		"RESUMER_DEV_DATA_DIR": t.TempDir(),
		// The demo's own stage falls due after 30 s; 2 s keeps the test short.
		"RESUMER_REMIND_BEFORE":   "23h59m58s",
		"RESUMER_NOTIFY_INTERVAL": "200ms",
	}
	urls, stop, stderr, stdout := startApp(t, []string{"dev", "--demo", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, environ)
	var page string
	waitFor(t, 30*time.Second, "two reminders at /dev/mail", func() bool {
		_, page = get(t, urls["admin"]+"/dev/mail")
		return strings.Contains(page, "Caught mail (2)")
	})
	for _, want := range []string{"omar@example.com", "mei@example.com"} {
		if !strings.Contains(page, want) {
			t.Errorf("no reminder to %s", want)
		}
	}
	time.Sleep(time.Second) // a late, wrong reminder would show up by now
	_, page = get(t, urls["admin"]+"/dev/mail")
	for _, unwanted := range []string{"jane@example.com", "lars@example.com"} {
		if strings.Contains(page, unwanted) {
			t.Errorf("%s finished but got a reminder", unwanted)
		}
	}
	if !strings.Contains(page, "Caught mail (2)") {
		t.Errorf("want exactly two reminders")
	}
	if !strings.Contains(stdout.String(), "demo: demo-omar") {
		t.Errorf("the demo did not narrate its steps:\n%s", stdout.String())
	}
	if err := stop(); err != nil {
		t.Fatalf("dev after cancellation: %v\n%s", err, stderr.String())
	}
}
