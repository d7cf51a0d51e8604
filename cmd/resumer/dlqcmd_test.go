package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/resumer/resumer/internal/testenv"
)

// TestDLQListOnFreshInstall lists dead letters before any worker has created the dead-letter
// stream: an empty list (the header only, or [] with --json), not "stream not found".
func TestDLQListOnFreshInstall(t *testing.T) {
	ns := testenv.NATS(t)
	environ := map[string]string{
		"RESUMER_NATS_URL":   ns.ClientURL(),
		"RESUMER_DLQ_STREAM": "DLQ_" + testenv.Prefix(t),
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"dlq", "list"}, env(environ), nil, &out, io.Discard); err != nil {
		t.Fatalf("dlq list on a fresh install: %v", err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "SEQ") {
		t.Errorf("dlq list printed %q, want the header only", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"dlq", "list", "--json"}, env(environ), nil, &out, io.Discard); err != nil {
		t.Fatalf("dlq list --json on a fresh install: %v", err)
	}
	if got := strings.TrimSpace(out.String()); got != "[]" {
		t.Errorf("dlq list --json printed %q, want []", got)
	}
}
