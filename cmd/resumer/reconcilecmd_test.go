package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona/personatest"
)

// TestReconcileDryRun runs `resumer reconcile --dry-run --since 1h` against the simulator:
// it lists the events webhooks never brought and publishes nothing (no NATS is needed).
func TestReconcileDryRun(t *testing.T) {
	sim := personatest.NewServer(t, personatest.Options{})
	sim.SetWebhooks(false)
	inq := sim.CreateInquiry(personatest.InquiryParams{ReferenceID: "user-1"})
	if err := sim.Start(inq.ID); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"reconcile", "--dry-run", "--since", "1h"}, env(map[string]string{
		"RESUMER_REDIS_URL":       testenv.RedisURL(t),
		"RESUMER_REDIS_PREFIX":    testenv.Prefix(t),
		"RESUMER_PERSONA_API_URL": sim.URL(),
		"RESUMER_PERSONA_API_KEY": sim.APIKey(),
		"RESUMER_NATS_URL":        "nats://127.0.0.1:1", // a dry run never connects
	}), strings.NewReader(""), &out, io.Discard)
	if err != nil {
		t.Fatalf("reconcile: %v\n%s", err, out.String())
	}
	for _, want := range []string{"dry run (nothing published)", "2 listed on 1 pages, 0 published", "open inquiries re-checked: 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(context.Background(), []string{"reconcile", "--since", "-1h"}, env(nil), strings.NewReader(""), io.Discard, io.Discard); err == nil {
		t.Error("negative --since accepted")
	}
	if err := run(context.Background(), []string{"reconcile", "--dry-run"}, env(map[string]string{"RESUMER_RECONCILE_BUDGET": "150%"}), strings.NewReader(""), io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "RESUMER_RECONCILE_BUDGET") {
		t.Errorf("budget 150%%: err = %v, want one naming RESUMER_RECONCILE_BUDGET", err)
	}
}
