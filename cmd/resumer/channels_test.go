package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/resumer/resumer/notify"
)

// TestConfigBrandsReachWebhookChannel: the brands of RESUMER_BRANDS_FILE reach the webhook
// channel as they reach the e-mail channel, so its body names the brand picked for the
// inquiry and writes in the brand's default locale.
func TestConfigBrandsReachWebhookChannel(t *testing.T) {
	brandsFile := filepath.Join(t.TempDir(), "brands.yaml")
	if err := os.WriteFile(brandsFile, []byte("brands:\n  - id: acme\n    name: Acme\n  - id: globex\n    name: Globex\n    locale: de\n    reference_prefixes: [globex]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bodies := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	t.Cleanup(srv.Close)
	cfg, _, err := loadConfig("test", nil, env(map[string]string{
		"RESUMER_CHANNELS":              "webhook",
		"RESUMER_NOTIFY_WEBHOOK_URL":    srv.URL,
		"RESUMER_NOTIFY_WEBHOOK_SECRET": "a plain secret",
		"RESUMER_BRANDS_FILE":           brandsFile,
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	channels, err := newChannels(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil || len(channels) != 1 {
		t.Fatalf("newChannels = %v, %v; want the webhook channel", channels, err)
	}
	r := &notify.Reminder{InquiryID: "inq_1", ReferenceID: "globex-7", Stage: notify.NewStage(time.Hour),
		ExpiresAt: time.Now().Add(time.Hour), Link: "https://resume.example/r/x"}
	if _, err := channels[0].Send(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	var body struct{ Brand, Locale string }
	if err := json.Unmarshal(<-bodies, &body); err != nil {
		t.Fatal(err)
	}
	if body.Brand != "globex" || body.Locale != "de" {
		t.Errorf("body brand %q, locale %q; want globex, de", body.Brand, body.Locale)
	}
}
