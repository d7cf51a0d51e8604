package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/testenv"
)

// TestReportPageInBrowser renders the admin /report page of a simulated population in
// headless Chromium: the page lays out its three charts (funnel bars per stage, completion by
// time since reminder, uplift with its interval), and every figure it shows (the table's
// counts, the uplift's interval, the curve's points) equals the JSON of the same report. A
// screenshot is left in the test's artifact directory. Skipped without chromium.
func TestReportPageInBrowser(t *testing.T) {
	bin := testenv.Chromium(t)
	s, _ := simulate(t, 600, false)
	now := simT0.Add(30 * time.Hour)
	srv := httptest.NewServer(Handler(s.store, func() time.Time { return now }, nil))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/?since=3d&format=json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rep Report
	if err := json.Unmarshal(body, &rep); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("report JSON: %d %v: %s", resp.StatusCode, err, body)
	}
	if r, _ := http.Get(srv.URL + "/?by=customer"); r == nil || r.StatusCode != http.StatusBadRequest {
		t.Errorf("?by=customer: want 400")
	}

	b := testenv.StartBrowser(t, bin)
	b.Navigate(srv.URL + "/?since=3d")
	eval := func(expr string, v any) {
		t.Helper()
		if err := json.Unmarshal(b.Eval(expr), v); err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
	}
	// The charts are laid out: bars with width, a curve per group, an interval per row.
	var layout struct {
		Bars, Lines, Intervals int
		MinBarWidth            float64
	}
	eval(`(() => {
		const bars = [...document.querySelectorAll('svg.funnel rect')];
		return {Bars: bars.length, Lines: document.querySelectorAll('#elapsed polyline').length,
			Intervals: document.querySelectorAll('#uplift line.ci').length,
			MinBarWidth: Math.min(...bars.map(r => r.getBoundingClientRect().width))};
	})()`, &layout)
	// Two stages, each with a reminded and a held-out group of 7 bars.
	if layout.Bars != 2*2*7 || layout.Lines != 2 || layout.Intervals != 3 || layout.MinBarWidth <= 0 {
		t.Errorf("layout %+v, want 28 visible bars, 2 curves, 3 intervals", layout)
	}

	// The table's counts equal the JSON's.
	var rows []struct {
		Key, Group       string
		Count, Completed int64
	}
	eval(`[...document.querySelectorAll('#figures tr[data-key]')].map(r => ({Key: r.dataset.key,
		Group: r.dataset.group, Count: +r.dataset.count, Completed: +r.dataset.completed}))`, &rows)
	want := map[string][2]int64{}
	for _, row := range append(append([]Row(nil), rep.Rows...), rep.Overall) {
		want[row.Key+"/reminded"] = [2]int64{row.Reminded.Count, row.Reminded.Steps["completed"]}
		want[row.Key+"/held_out"] = [2]int64{row.HeldOut.Count, row.HeldOut.Steps["completed"]}
	}
	if len(rows) != len(want) {
		t.Errorf("page table has %d rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		if w := want[r.Key+"/"+r.Group]; w != [2]int64{r.Count, r.Completed} {
			t.Errorf("page %s/%s: %d, %d completed; JSON %d, %d", r.Key, r.Group, r.Count, r.Completed, w[0], w[1])
		}
	}
	// The uplift intervals equal the JSON's.
	var ups []struct {
		Key             string
		Diff, Low, High float64
	}
	eval(`[...document.querySelectorAll('#uplift g.uplift')].map(g => ({Key: g.dataset.key,
		Diff: +g.dataset.difference, Low: +g.dataset.low, High: +g.dataset.high}))`, &ups)
	for _, u := range ups {
		var row *Row
		if u.Key == "all" {
			row = &rep.Overall
		}
		for i := range rep.Rows {
			if rep.Rows[i].Key == u.Key {
				row = &rep.Rows[i]
			}
		}
		if row == nil || row.Uplift == nil {
			t.Errorf("page shows an uplift for %q the JSON does not have", u.Key)
			continue
		}
		d := row.Uplift.Difference
		if math.Abs(d.Value-u.Diff) > 1e-6 || math.Abs(d.Low-u.Low) > 1e-6 || math.Abs(d.High-u.High) > 1e-6 {
			t.Errorf("page uplift of %s %+v, JSON %+v", u.Key, u, d)
		}
	}
	// The curve's points are the JSON's.
	var pts [][]float64
	eval(`[...document.querySelectorAll('#elapsed polyline')].map(l => [...l.parentNode.querySelectorAll('circle.' + (l.classList.contains('line-held') ? 'bar-held' : 'bar-reminded'))].map(c => +c.dataset.value))`, &pts)
	if len(pts) != 2 || len(pts[0]) != len(rep.Elapsed) {
		t.Fatalf("curve points %v, want 2 × %d", pts, len(rep.Elapsed))
	}
	for i, p := range rep.Elapsed {
		if math.Abs(pts[0][i]-p.Reminded) > 1e-6 || math.Abs(pts[1][i]-p.HeldOut) > 1e-6 {
			t.Errorf("curve point %d: page %v/%v, JSON %v/%v", i, pts[0][i], pts[1][i], p.Reminded, p.HeldOut)
		}
	}
	var summary string
	eval(`document.getElementById('summary').innerText`, &summary)
	if summary != rep.Summary {
		t.Errorf("summary %q, JSON %q", summary, rep.Summary)
	}

	shot := filepath.Join(t.ArtifactDir(), "report.png")
	testenv.RunChromium(t, bin, srv.URL+"/?since=3d", "--screenshot="+shot, "--window-size=1000,2200")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Errorf("screenshot: %v", err)
	}
	t.Log(fmt.Sprintf("screenshot: %s", shot))
}
