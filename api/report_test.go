package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/report"
	"github.com/resumer/resumer/state"
)

// TestReportEndpoint follows one reminded inquiry: its reminder is recorded (as the notifier
// would), the user views the /r/ page twice (one view counted), presses the button (counted
// once), and GET /v1/report tells exactly that, in the shape api/openapi.yaml describes.
// Keys without the scope, or limited to a reference prefix, are refused; bad parameters are
// 400.
func TestReportEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	id := e.create(personatest.InquiryParams{ReferenceID: "acme-1"})
	e.sim.Start(id)
	e.sync()
	inq, err := e.store.Inquiry(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	e.sim.Advance(inq.ExpiresAt.Add(-time.Hour).Sub(e.sim.Now()))
	claims, err := e.store.ClaimDue(ctx, e.sim.Now(), time.Minute, 10)
	if err != nil || len(claims) != 1 {
		t.Fatalf("ClaimDue = %d claims, %v", len(claims), err)
	}
	c := claims[0]
	c.Attribution = state.Attribution{Group: state.GroupReminded, Stage: "1h", Channel: "email", LinkMode: "redirect"}
	if err := e.store.CompleteReminder(ctx, c, "1h", []string{"6h"}); err != nil {
		t.Fatal(err)
	}
	token := e.link(id, 30*time.Minute)
	e.open(token)
	if r := e.follow(token); r.status != http.StatusSeeOther {
		t.Fatalf("pressing the button: %d %s", r.status, r.body)
	}

	r := e.do(http.MethodGet, "/v1/report?since=1d", "reports", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/report: %d %s", r.status, r.body)
	}
	var rep report.Report
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Key != "1h" {
		t.Fatalf("rows = %+v, want one of stage 1h", rep.Rows)
	}
	g := rep.Rows[0].Reminded
	if g.Count != 1 || g.Steps[state.StepOpened] != 1 || g.Steps[state.StepPressed] != 1 || g.Steps[state.StepCompleted] != 0 {
		t.Errorf("1h reminded = %+v, want 1 reminder opened and pressed once", g)
	}
	if rep.Overall.Reminded.Count != 1 || rep.Overall.HeldOut.Count != 0 {
		t.Errorf("overall = %+v", rep.Overall)
	}
	if rep.Summary == "" {
		t.Error("no summary")
	}

	for _, c := range []struct {
		key, query string
		status     int
		code       Code
	}{
		{"reader", "", http.StatusForbidden, CodeForbidden},
		{"acmerep", "", http.StatusForbidden, CodeForbidden},
		{"", "", http.StatusUnauthorized, CodeUnauthorized},
		{"reports", "?since=soon", http.StatusBadRequest, CodeInvalidRequest},
		{"reports", "?by=customer", http.StatusBadRequest, CodeInvalidRequest},
	} {
		wantProblem(t, e.do(http.MethodGet, "/v1/report"+c.query, c.key, nil), c.status, c.code)
	}
}
