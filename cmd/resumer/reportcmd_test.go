package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/report"
	"github.com/resumer/resumer/state"
)

// TestReportCommand records one reminder that led to a completion, as the roles would, and
// reads it back with `resumer report` as JSON and as a table; a bad --by is an error that
// says what is accepted.
func TestReportCommand(t *testing.T) {
	client, prefix := testenv.Redis(t)
	environ := map[string]string{"RESUMER_REDIS_URL": testenv.RedisURL(t), "RESUMER_REDIS_PREFIX": prefix}
	store, err := state.New(client, state.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	const id = "inq_report000000000000001"
	inq := &persona.Inquiry{ID: id, Status: persona.StatusPending, CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(2 * time.Hour)}
	if _, err := store.Apply(ctx, &persona.Event{ID: "evt_r1", Name: "inquiry.started", InquiryID: id, CreatedAt: now.Add(-time.Hour), Inquiry: inq}); err != nil {
		t.Fatal(err)
	}
	claims, err := store.ClaimDue(ctx, now, time.Minute, 10)
	if err != nil || len(claims) != 1 {
		t.Fatalf("ClaimDue: %d, %v", len(claims), err)
	}
	claims[0].Attribution = state.Attribution{Group: state.GroupReminded, Stage: "6h", Channel: "email", LinkMode: "session-token"}
	if err := store.CompleteReminder(ctx, claims[0], "6h", nil); err != nil {
		t.Fatal(err)
	}
	done := *inq
	done.Status = persona.StatusCompleted
	if _, err := store.Apply(ctx, &persona.Event{ID: "evt_r2", Name: "inquiry.completed", InquiryID: id, CreatedAt: now.Add(time.Second), Inquiry: &done}); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := run(ctx, []string{"report", "--since", "1d", "--json"}, env(environ), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Overall.Reminded.Count != 1 || rep.Overall.Reminded.Steps[state.StepCompleted] != 1 || len(rep.Rows) != 1 {
		t.Errorf("report = %+v", rep)
	}
	out.Reset()
	if err := run(ctx, []string{"report", "--by", "channel"}, env(environ), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"by channel", "email", "100.0% (20.7-100.0)", "No held-out inquiries"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report table lacks %q:\n%s", want, out.String())
		}
	}
	err = run(ctx, []string{"report", "--by", "customer"}, env(environ), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "stage, channel, link-mode, brand") {
		t.Errorf("--by customer: %v", err)
	}
}
