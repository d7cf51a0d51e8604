package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/webhook"
)

// TestReadinessPerRole: with Redis down, a process running webhook and worker is not ready as
// a whole (the worker cannot apply) but its webhook role is (intake needs only NATS), and
// signed events are still stored; the body names each role's dependencies.
func TestReadinessPerRole(t *testing.T) {
	ns := testenv.NATS(t)
	rs := testenv.StartRedis(t)
	const secret = "wbhsec_test_ready"
	stream := "READY_" + strings.ToUpper(strings.ReplaceAll(t.Name(), "/", "_"))
	environ := map[string]string{
		"RESUMER_WEBHOOK_SECRETS": secret,
		"RESUMER_NATS_URL":        ns.ClientURL(),
		"RESUMER_REDIS_URL":       rs.URL(),
		"RESUMER_STREAM":          stream,
		"RESUMER_DLQ_STREAM":      stream + "_DLQ",
		"RESUMER_CONSUMER":        "ready",
	}
	urls, stop, stderr, _ := startApp(t, []string{"serve", "--roles", "webhook,worker", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, environ)
	waitFor(t, 20*time.Second, "/readyz", func() bool {
		code, _ := get(t, urls["admin"]+"/readyz")
		return code == http.StatusOK
	})
	if code, body := get(t, urls["admin"]+"/readyz"); !strings.Contains(body, "webhook: ready (nats: ok; stream: ok)") || !strings.Contains(body, "worker: ready (nats: ok; redis: ok; stream: ok; consumer: ok)") {
		t.Errorf("/readyz = %d %q", code, body)
	}
	if code, _ := get(t, urls["admin"]+"/readyz/api"); code != http.StatusNotFound {
		t.Errorf("/readyz/api on a process without the api role = %d, want 404", code)
	}

	rs.Stop()
	var body string
	waitFor(t, 20*time.Second, "/readyz 503 naming redis", func() bool {
		var code int
		code, body = get(t, urls["admin"]+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "worker: not ready") && strings.Contains(body, "redis: ")
	})
	if code, wbody := get(t, urls["admin"]+"/readyz/webhook"); code != http.StatusOK {
		t.Errorf("/readyz/webhook with Redis down = %d %q, want 200", code, wbody)
	}
	if !strings.Contains(body, "webhook: ready") {
		t.Errorf("/readyz does not show the webhook role ready:\n%s", body)
	}
	ev, err := os.ReadFile("../../testdata/inquiry.started.json")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, urls["http"]+"/webhooks/persona", bytes.NewReader(ev))
	req.Header.Set("Persona-Signature", webhook.Sign(ev, []byte(secret), time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("signed event with Redis down: %d, want 200 (intake needs only NATS)", resp.StatusCode)
	}

	rs.Restart(t)
	waitFor(t, 20*time.Second, "/readyz back to 200", func() bool {
		code, _ := get(t, urls["admin"]+"/readyz")
		return code == http.StatusOK
	})
	if err := stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
}

// TestReadyzEveryRoleListsDeps: every role a process can run names its dependencies in
// roleDeps, and each of them is one the process registers a check for; a role without an entry
// would report "ready ()" whatever is down.
func TestReadyzEveryRoleListsDeps(t *testing.T) {
	known := []string{"nats", "stream", "redis", "consumer"}
	for _, role := range allRoles {
		deps := roleDeps[role]
		if len(deps) == 0 {
			t.Errorf("role %s lists no dependencies in roleDeps", role)
		}
		for _, d := range deps {
			if !slices.Contains(known, d) {
				t.Errorf("role %s lists %q, which serve never checks (checks: %v)", role, d, known)
			}
		}
	}
}

// TestReadyzReconcile: the reconcile role's readiness names what it needs (NATS and the events
// stream it publishes replayed events into, Redis for its lease and checkpoint), on /readyz
// and /readyz/reconcile, and it is not ready while Redis is down.
func TestReadyzReconcile(t *testing.T) {
	ns := testenv.NATS(t)
	rs := testenv.StartRedis(t)
	sim := personatest.NewServer(t, personatest.Options{})
	sim.SetWebhooks(false)
	stream := "READY_" + strings.ToUpper(strings.ReplaceAll(t.Name(), "/", "_"))
	environ := map[string]string{
		"RESUMER_NATS_URL":        ns.ClientURL(),
		"RESUMER_REDIS_URL":       rs.URL(),
		"RESUMER_STREAM":          stream,
		"RESUMER_DLQ_STREAM":      stream + "_DLQ",
		"RESUMER_PERSONA_API_URL": sim.URL(),
		"RESUMER_PERSONA_API_KEY": sim.APIKey(),
	}
	urls, stop, stderr, _ := startApp(t, []string{"serve", "--roles", "reconcile", "--admin-addr", "127.0.0.1:0"}, environ)
	waitFor(t, 20*time.Second, "/readyz", func() bool {
		code, _ := get(t, urls["admin"]+"/readyz")
		return code == http.StatusOK
	})
	const want = "reconcile: ready (nats: ok; redis: ok; stream: ok)"
	for _, path := range []string{"/readyz", "/readyz/reconcile"} {
		if code, body := get(t, urls["admin"]+path); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s = %d %q, want 200 with %q", path, code, body, want)
		}
	}

	rs.Stop()
	waitFor(t, 20*time.Second, "/readyz/reconcile 503 naming redis", func() bool {
		code, body := get(t, urls["admin"]+"/readyz/reconcile")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "reconcile: not ready") && strings.Contains(body, "redis: ")
	})
	rs.Restart(t)
	if err := stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
}

// TestNATSDownSaysWhy: with nothing at the NATS URL, the log, /readyz and the refused
// webhook all carry the real reason ("connection refused"), not nats.go's placeholders.
func TestNATSDownSaysWhy(t *testing.T) {
	const secret = "wbhsec_test_down"
	environ := map[string]string{
		"RESUMER_WEBHOOK_SECRETS": secret,
		"RESUMER_NATS_URL":        "nats://127.0.0.1:" + deadPort(t),
	}
	urls, stop, stderr, _ := startApp(t, []string{"serve", "--roles", "webhook", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, environ)
	waitFor(t, 20*time.Second, "connection refused in /readyz", func() bool {
		code, body := get(t, urls["admin"]+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "connection refused")
	})
	ev, _ := os.ReadFile("../../testdata/inquiry.started.json")
	req, _ := http.NewRequest(http.MethodPost, urls["http"]+"/webhooks/persona", bytes.NewReader(ev))
	req.Header.Set("Persona-Signature", webhook.Sign(ev, []byte(secret), time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("signed event with NATS down: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	log := stderr.String()
	if !strings.Contains(log, "connection refused") {
		t.Errorf("the log never says connection refused:\n%s", log)
	}
	for _, vague := range []string{"headers not supported", "outbound buffer limit exceeded"} {
		if strings.Contains(log, vague) {
			t.Errorf("the log says %q instead of the reason:\n%s", vague, log)
		}
	}
}

func deadPort(t *testing.T) string {
	u := deadRedisURL(t) // redis://127.0.0.1:PORT/0
	return strings.TrimSuffix(strings.TrimPrefix(u, "redis://127.0.0.1:"), "/0")
}

// TestLogsAreJSONWithDurationStrings: durations are Go duration strings, and go-redis's own
// lines come through slog as JSON.
func TestLogsAreJSONWithDurationStrings(t *testing.T) {
	// go-redis's logger is process-wide: a concurrency-safe buffer, since other tests' clients
	// may log through it too.
	buf := &testenv.Buffer{}
	logger := newLogger(&config{LogLevel: slog.LevelInfo}, buf)
	logger.Info("took", "elapsed", 1500*time.Millisecond)
	redisLogger{logger}.Printf(context.Background(), "redis: connection pool: %s", "was closed")
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
	}
	if !strings.Contains(buf.String(), `"elapsed":"1.5s"`) {
		t.Errorf("duration not a Go duration string: %s", buf.String())
	}
	if !strings.Contains(buf.String(), `"msg":"redis: connection pool: was closed"`) {
		t.Errorf("go-redis line missing: %s", buf.String())
	}
}
