package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"github.com/resumer/resumer/state"
)

//go:embed page.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":  func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) },
	"pts":  func(x float64) string { return fmt.Sprintf("%+.1f", 100*x) },
	"f":    func(x float64) string { return fmt.Sprintf("%.1f", x) },
	"fnum": func(x float64) string { return fmt.Sprintf("%.6f", x) },
}).Parse(pageTemplate))

// chart geometry (SVG user units).
const (
	chartWidth = 720
	labelWidth = 110
	barHeight  = 16
	barGap     = 4
)

// funnelSteps are the bars of the funnel chart, after the reminders themselves.
var funnelSteps = []string{state.StepOpened, state.StepPressed, state.StepResumed, state.StepCompleted, state.StepApproved, state.StepExpired}

type barView struct {
	Label      string
	Count      int64
	Share      float64 // of the row's count
	Y, W       float64
	ValueX     float64
	LabelY     float64
	HeldOut    bool
	ValueLabel string
}

type funnelView struct {
	Key    string
	Unit   string
	Height float64
	Bars   []barView
}

type lineView struct {
	Points  string
	Dots    []pointView
	HeldOut bool
}

type pointView struct{ X, Y, Value float64 }

type tickView struct {
	X, Y  float64
	Label string
}

type upliftView struct {
	Key                 string
	Y                   float64
	X, XLow, XHigh      float64
	Diff, Low, High     float64
	Conclusive, HasData bool
	Verdict             string
}

type pageView struct {
	R          *Report
	Rows       []Row
	Funnels    []funnelView
	Lines      []lineView
	XTicks     []tickView
	YTicks     []tickView
	Uplifts    []upliftView
	UpliftH    float64
	ZeroX      float64
	UpliftAxis []tickView
	Generated  string
	Width      float64
	PlotLeft   float64
	PlotRight  float64
	MinSample  int
	Columns    int
}

// WriteHTML writes r as a self-contained HTML page (no scripts, no external resources) with
// SVG charts: the funnel of each row as bars, the completion rate by time since reminder for
// both groups, and the uplift of each row with its interval. Elements carry the figures in
// data- attributes, equal to the JSON's.
func (r *Report) WriteHTML(w io.Writer) error {
	v := pageView{R: r, Rows: append(append([]Row(nil), r.Rows...), r.Overall), Width: chartWidth,
		Generated: r.GeneratedAt.Format(time.RFC3339), PlotLeft: labelWidth, PlotRight: chartWidth - 20, MinSample: MinSample, Columns: len(r.Steps) + 5}
	plot := float64(chartWidth - labelWidth - 90)

	for _, row := range r.Rows {
		fv := funnelView{Key: row.Key, Unit: row.Unit}
		y := 0.0
		for _, g := range []struct {
			held bool
			g    Group
		}{{false, row.Reminded}, {true, row.HeldOut}} {
			if g.g.Count == 0 {
				continue
			}
			name := "reminded"
			if g.held {
				name = "held out"
			}
			bars := []barView{{Label: name, Count: g.g.Count, Share: 1}}
			for _, st := range funnelSteps {
				bars = append(bars, barView{Label: st, Count: g.g.Steps[st], Share: ratio(g.g.Steps[st], g.g.Count)})
			}
			for _, b := range bars {
				b.HeldOut = g.held
				b.Y = y
				b.LabelY = y + barHeight - 4
				b.W = math.Max(1, b.Share*plot)
				b.ValueX = labelWidth + b.W + 6
				b.ValueLabel = fmt.Sprintf("%d (%.1f%%)", b.Count, 100*b.Share)
				fv.Bars = append(fv.Bars, b)
				y += barHeight + barGap
			}
			y += 8
		}
		fv.Height = y + 4
		v.Funnels = append(v.Funnels, fv)
	}

	// Completion by time since reminder: one point per histogram bound, evenly spaced.
	const lineH, lineTop = 220.0, 10.0
	n := len(r.Elapsed)
	maxY := 0.0
	for _, p := range r.Elapsed {
		maxY = math.Max(maxY, math.Max(p.Reminded, p.HeldOut))
	}
	maxY = niceCeil(maxY)
	x := func(i int) float64 { return labelWidth + float64(i)*(v.PlotRight-labelWidth)/float64(max(n-1, 1)) }
	yOf := func(val float64) float64 { return lineTop + lineH - val/maxY*lineH }
	for _, held := range []bool{false, true} {
		var pts []string
		lv := lineView{HeldOut: held}
		for i, p := range r.Elapsed {
			val := p.Reminded
			if held {
				val = p.HeldOut
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), yOf(val)))
			lv.Dots = append(lv.Dots, pointView{X: x(i), Y: yOf(val), Value: val})
		}
		lv.Points = strings.Join(pts, " ")
		v.Lines = append(v.Lines, lv)
	}
	for i, p := range r.Elapsed {
		label := "later"
		if p.WithinSeconds > 0 {
			label = shortDuration(time.Duration(p.WithinSeconds) * time.Second)
		}
		v.XTicks = append(v.XTicks, tickView{X: x(i), Y: lineTop + lineH + 16, Label: label})
	}
	for i := 0; i <= 4; i++ {
		val := maxY * float64(i) / 4
		v.YTicks = append(v.YTicks, tickView{X: labelWidth - 6, Y: yOf(val), Label: fmt.Sprintf("%.0f%%", 100*val)})
	}

	// Uplift with its interval, per row and overall, on one axis around zero.
	lo, hi := -0.05, 0.05
	for _, row := range v.Rows {
		if u := row.Uplift; u != nil && (row.Reminded.Count > 0 && row.HeldOut.Count > 0) {
			lo, hi = math.Min(lo, u.Difference.Low), math.Max(hi, u.Difference.High)
		}
	}
	span := math.Max(-lo, hi)
	span = niceCeil(span)
	ux := func(d float64) float64 { return labelWidth + (d+span)/(2*span)*(v.PlotRight-labelWidth) }
	v.ZeroX = ux(0)
	for i, row := range v.Rows {
		uv := upliftView{Key: row.Key, Y: 20 + float64(i)*28}
		if u := row.Uplift; u != nil {
			uv.Verdict = u.Verdict
			uv.Conclusive = u.Conclusive
			if row.Reminded.Count > 0 && row.HeldOut.Count > 0 {
				uv.HasData = true
				uv.Diff, uv.Low, uv.High = u.Difference.Value, u.Difference.Low, u.Difference.High
				uv.X, uv.XLow, uv.XHigh = ux(uv.Diff), ux(uv.Low), ux(uv.High)
			}
		}
		v.Uplifts = append(v.Uplifts, uv)
	}
	v.UpliftH = 20 + float64(len(v.Rows))*28 + 10
	for _, d := range []float64{-span, -span / 2, 0, span / 2, span} {
		v.UpliftAxis = append(v.UpliftAxis, tickView{X: ux(d), Y: v.UpliftH + 4, Label: fmt.Sprintf("%+.0f pts", 100*d)})
	}
	return page.Execute(w, v)
}

// niceCeil rounds a positive share up to 5, 10, 20, 25, 50 or 100 %, at least 5 %.
func niceCeil(x float64) float64 {
	for _, c := range []float64{0.05, 0.1, 0.2, 0.25, 0.5, 1} {
		if x <= c {
			return c
		}
	}
	return math.Ceil(x)
}

// shortDuration is "5m", "2h", "7d".
func shortDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	default:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
}
