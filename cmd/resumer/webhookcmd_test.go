package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/testenv"
)

// TestFreshenMovesEveryTimestamp: --fresh moves the event's created-at to now and every other
// timestamp by the same amount, so the fixture's inquiry is live again with its spacing kept.
func TestFreshenMovesEveryTimestamp(t *testing.T) {
	body, err := os.ReadFile("../../testdata/inquiry.started.json")
	if err != nil {
		t.Fatal(err)
	}
	times := func(b []byte) map[string]time.Time {
		var v map[string]any
		json.Unmarshal(b, &v)
		out := map[string]time.Time{}
		attrs := v["data"].(map[string]any)["attributes"].(map[string]any)
		if s, ok := attrs["created-at"].(string); ok {
			out["event"], _ = time.Parse(time.RFC3339Nano, s)
		}
		inq := attrs["payload"].(map[string]any)["data"].(map[string]any)["attributes"].(map[string]any)
		for _, k := range []string{"created-at", "started-at", "expires-at"} {
			if s, ok := inq[k].(string); ok {
				out[k], _ = time.Parse(time.RFC3339Nano, s)
			}
		}
		return out
	}
	before := times(body)
	if before["expires-at"].IsZero() || before["event"].IsZero() {
		t.Fatalf("fixture lacks times: %v", before)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	fresh, err := freshenEvent(body, now)
	if err != nil {
		t.Fatal(err)
	}
	after := times(fresh)
	if !after["event"].Equal(now) {
		t.Errorf("event created-at = %v, want %v", after["event"], now)
	}
	for _, k := range []string{"created-at", "started-at", "expires-at"} {
		if got, want := after[k].Sub(after["event"]), before[k].Sub(before["event"]); got != want {
			t.Errorf("%s is %v from the event, want %v as in the fixture", k, got, want)
		}
	}
	if !after["expires-at"].After(now) {
		t.Errorf("a fresh event's inquiry expires in the past: %v", after["expires-at"])
	}
	if strings.Contains(string(fresh), extractID(body)) {
		t.Errorf("the event id was not replaced")
	}
}

func extractID(body []byte) string {
	var v struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	json.Unmarshal(body, &v)
	return v.Data.ID
}

// TestWebhookSendSaysAcceptedOrDuplicate sends the fixture twice and once --fresh through a
// running receiver; the second is a duplicate, the fresh one is accepted, and `inquiry show`
// marks a past expiry as such.
func TestWebhookSendSaysAcceptedOrDuplicate(t *testing.T) {
	ns := testenv.NATS(t)
	_, prefix := testenv.Redis(t)
	const secret = "wbhsec_test_send"
	stream := strings.ToUpper(strings.ReplaceAll(prefix, "-", "_"))
	environ := map[string]string{
		"RESUMER_WEBHOOK_SECRETS": secret,
		"RESUMER_NATS_URL":        ns.ClientURL(),
		"RESUMER_REDIS_URL":       testenv.RedisURL(t),
		"RESUMER_REDIS_PREFIX":    prefix,
		"RESUMER_STREAM":          stream,
		"RESUMER_DLQ_STREAM":      stream + "_DLQ",
	}
	urls, stop, _, _ := startApp(t, []string{"serve", "--roles", "webhook,worker", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, environ)
	body, err := os.ReadFile("../../testdata/inquiry.started.json")
	if err != nil {
		t.Fatal(err)
	}
	send := func(extra ...string) string {
		var out bytes.Buffer
		args := append([]string{"webhook", "send", "--url", urls["http"] + "/webhooks/persona", "--secret", secret}, extra...)
		if err := run(context.Background(), args, env(nil), bytes.NewReader(body), &out, io.Discard); err != nil {
			t.Fatalf("webhook send %v: %v", extra, err)
		}
		return out.String()
	}
	if out := send(); !strings.Contains(out, "200 OK accepted") {
		t.Errorf("first send: %q, want accepted", out)
	}
	if out := send(); !strings.Contains(out, "200 OK duplicate") {
		t.Errorf("second send: %q, want duplicate", out)
	}
	if out := send("--fresh"); !strings.Contains(out, "200 OK accepted") {
		t.Errorf("fresh send: %q, want accepted", out)
	}
	id := fixtureInquiryID(t, body)
	waitFor(t, 20*time.Second, "the fresh inquiry in redis with a future expiry", func() bool {
		var out bytes.Buffer
		err := run(context.Background(), []string{"inquiry", "show", id}, env(environ), nil, &out, io.Discard)
		return err == nil && strings.Contains(out.String(), "(in ")
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func fixtureInquiryID(t *testing.T, body []byte) string {
	t.Helper()
	var v struct {
		Data struct {
			Attributes struct {
				Payload struct {
					Data struct {
						ID string `json:"id"`
					} `json:"data"`
				} `json:"payload"`
			} `json:"attributes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Data.Attributes.Payload.Data.ID == "" {
		t.Fatalf("fixture inquiry id: %v", err)
	}
	return v.Data.Attributes.Payload.Data.ID
}

func TestFmtExpiry(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	if got := fmtExpiry(now.Add(-3*time.Hour), now); !strings.Contains(got, "in the past: 3h0m0s ago") {
		t.Errorf("past: %q", got)
	}
	if got := fmtExpiry(now.Add(90*time.Minute), now); !strings.Contains(got, "(in 1h30m0s)") {
		t.Errorf("future: %q", got)
	}
	if got := fmtExpiry(time.Time{}, now); got != "-" {
		t.Errorf("zero: %q", got)
	}
}
