package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/testenv"
)

// TestServeRefusesOverlappingSubjects: a second deployment in the same NATS account that
// keeps the default subject prefix stops at start-up with an error naming the setting and
// the stream in the way, instead of retrying for ever; with a prefix of its own it starts.
func TestServeRefusesOverlappingSubjects(t *testing.T) {
	ns := testenv.NATS(t)
	js := testenv.JetStream(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := eventstream.Ensure(ctx, js, eventstream.Config{Name: "PRODUCTION_EVENTS"}); err != nil {
		t.Fatal(err)
	}

	environ := map[string]string{
		"RESUMER_WEBHOOK_SECRETS": "wbhsec_test_subjects",
		"RESUMER_NATS_URL":        ns.ClientURL(),
		"RESUMER_STREAM":          "STAGING_EVENTS",
	}
	args := []string{"serve", "--roles", "webhook", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}
	start := time.Now()
	err := run(ctx, args, env(environ), strings.NewReader(""), io.Discard, io.Discard)
	t.Logf("first run returned after %v: %v", time.Since(start), err)
	if err == nil {
		t.Fatal("serve started beside a stream claiming the same subjects")
	}
	for _, want := range []string{"RESUMER_SUBJECT_PREFIX", "PRODUCTION_EVENTS", "persona.events.>"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}

	environ["RESUMER_SUBJECT_PREFIX"] = "staging.persona.events"
	_, stop, stderr, _ := startApp(t, args, environ)
	waitFor(t, 30*time.Second, "the staging stream", func() bool {
		s, err := js.Stream(ctx, "STAGING_EVENTS")
		return err == nil && len(s.CachedInfo().Config.Subjects) == 1 &&
			s.CachedInfo().Config.Subjects[0] == "staging.persona.events.>"
	})
	if err := stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
}
