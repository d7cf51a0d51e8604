package report

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/state"
)

// TestParsePeriod checks the accepted forms of --since / ?since= and that the rest is refused
// as a bad request.
func TestParsePeriod(t *testing.T) {
	now := time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		since string
		from  time.Time
	}{
		{"", now.Add(-7 * 24 * time.Hour)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"36h", now.Add(-36 * time.Hour)},
		{"2026-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
	} {
		from, to, err := ParsePeriod(c.since, now)
		if err != nil || !from.Equal(c.from) || !to.Equal(now) {
			t.Errorf("ParsePeriod(%q) = %v, %v, %v; want %v", c.since, from, to, err, c.from)
		}
	}
	for _, bad := range []string{"soon", "-3d", "0h", "2026-04-01", "99999d", "7 days"} {
		if _, _, err := ParsePeriod(bad, now); !errors.Is(err, ErrBadRequest) {
			t.Errorf("ParsePeriod(%q): %v, want ErrBadRequest", bad, err)
		}
	}
}

// brokenSource fails like Redis does when it cannot be reached.
type brokenSource struct{}

func (brokenSource) Funnel(context.Context, time.Time, time.Time) (*state.FunnelData, error) {
	return nil, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
}

// TestHandlerFailures: a store that cannot be read is a 503 that does not leak the error;
// bad parameters are a 400; an empty period renders a page that says there is nothing yet.
func TestHandlerFailures(t *testing.T) {
	srv := httptest.NewServer(Handler(brokenSource{}, nil, nil))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/?since=7d")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("broken store: %d, want 503", resp.StatusCode)
	}
	if strings.Contains(string(body), "connection refused") || strings.Contains(string(body), "6379") {
		t.Errorf("broken store: the answer leaks the store's error: %q", body)
	}
	resp, err = http.Get(srv.URL + "/?since=soon")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad since: %d, want 400", resp.StatusCode)
	}

	empty := FromFunnel(&state.FunnelData{}, ByStage, time.Now())
	var page strings.Builder
	if err := empty.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "No reminders in this period.") || empty.Rows == nil {
		t.Errorf("empty report: rows %v, page lacks the empty notice", empty.Rows)
	}
}

// TestSmallSampleVerdict: below MinSample in either group the report refuses to conclude,
// even when the difference looks large; with enough it concludes.
func TestSmallSampleVerdict(t *testing.T) {
	data := func(n1, x1, n0, x0 int64) *state.FunnelData {
		r := state.Attribution{Group: state.GroupReminded, Stage: "6h"}
		h := state.Attribution{Group: state.GroupHeldOut, Stage: "6h"}
		return &state.FunnelData{Counts: []state.FunnelCount{
			{Attribution: r, Step: state.StepReminder, Count: n1}, {Attribution: r, Step: state.StepInquiry, Count: n1},
			{Attribution: r, Step: state.StepCompleted, Count: x1},
			{Attribution: h, Step: state.StepReminder, Count: n0}, {Attribution: h, Step: state.StepInquiry, Count: n0},
			{Attribution: h, Step: state.StepCompleted, Count: x0},
		}}
	}
	small := FromFunnel(data(200, 150, 10, 1), ByStage, time.Now())
	if u := small.Overall.Uplift; u.Conclusive || !strings.HasPrefix(u.Verdict, "Sample too small to conclude") {
		t.Errorf("10 held out: %+v", u)
	}
	big := FromFunnel(data(2000, 1500, 200, 40), ByStage, time.Now())
	if u := big.Overall.Uplift; !u.Conclusive || !strings.HasPrefix(u.Verdict, "Reminders raise completion by 55.0 points") ||
		u.Saved.Value != 0.55*2000 {
		t.Errorf("2000/200: %+v", u)
	}
	none := FromFunnel(data(2000, 1000, 200, 100), ByStage, time.Now())
	if u := none.Overall.Uplift; u.Conclusive || !strings.HasPrefix(u.Verdict, "No significant difference") {
		t.Errorf("equal rates: %+v", u)
	}
}
