package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/resumer/resumer/state"
)

// Dimensions a report can be broken down by (Options.By).
const (
	ByStage    = "stage"
	ByChannel  = "channel"
	ByLinkMode = "link-mode"
	ByBrand    = "brand"
)

// Dimensions are the values Options.By accepts.
var Dimensions = []string{ByStage, ByChannel, ByLinkMode, ByBrand}

// ErrBadRequest is wrapped by the errors of invalid report parameters (a bad period or
// dimension); nothing was read.
var ErrBadRequest = errors.New("invalid report request")

// Source reads the funnel counts of a period; *state.Store implements it.
type Source interface {
	Funnel(ctx context.Context, from, to time.Time) (*state.FunnelData, error)
}

// Options says what to report.
type Options struct {
	// From and To are the first and last UTC days counted (inclusive).
	From, To time.Time
	// By breaks the report down by a dimension (ByStage when empty).
	By string
}

// Units of a row's counts.
const (
	// UnitReminders: every reminder counts once (rows by stage); its outcome is what
	// followed it before the next reminder.
	UnitReminders = "reminders"
	// UnitInquiries: every reminded inquiry counts once, on its first reminder (the overall
	// row and rows by channel, link mode or brand).
	UnitInquiries = "inquiries"
)

// Report is the recovery funnel of a period and the uplift the holdout measured.
type Report struct {
	From        string    `json:"from"` // first day, YYYY-MM-DD (UTC)
	To          string    `json:"to"`   // last day, inclusive
	GeneratedAt time.Time `json:"generated_at"`
	By          string    `json:"by"`
	// Steps are the funnel steps in order, the keys of Group.Steps.
	Steps []string `json:"steps"`
	// Rows break the period down by the dimension; Overall sums every reminded inquiry.
	Rows    []Row `json:"rows"`
	Overall Row   `json:"overall"`
	// Elapsed is the share of reminded (held-out) inquiries that completed within each bound
	// of the time since their last reminder.
	Elapsed []ElapsedPoint `json:"completion_by_time_since_reminder"`
	// Summary says in one sentence what the overall uplift shows.
	Summary string `json:"summary"`
}

// Row is one value of the dimension (a stage, a channel ...) or the overall row ("all").
type Row struct {
	Key      string  `json:"key"`
	Unit     string  `json:"unit"`
	Reminded Group   `json:"reminded"`
	HeldOut  Group   `json:"held_out"`
	Uplift   *Uplift `json:"uplift,omitempty"`
}

// Group is the funnel of one holdout group in a row.
type Group struct {
	// Count is the number of reminders (held-out ones for the held-out group) or inquiries,
	// per the row's unit: the denominator of the rates.
	Count int64 `json:"count"`
	// Steps counts each funnel step (opened, pressed, resumed, completed, needs_review,
	// approved, declined, failed, expired).
	Steps map[string]int64 `json:"steps"`
	// Completion is completed / Count with its 95 % Wilson interval.
	Completion Interval `json:"completion_rate"`
}

// Uplift is the measured effect of reminders in a row.
type Uplift struct {
	// Difference is the reminded completion rate minus the held-out one, with the 95 %
	// Newcombe hybrid score interval.
	Difference Interval `json:"difference"`
	// Saved estimates the verifications the reminders saved: Difference times the reminded
	// count, with the interval scaled alike.
	Saved Interval `json:"verifications_saved"`
	// Conclusive is true when both groups have at least MinSample and the interval excludes
	// zero.
	Conclusive bool `json:"conclusive"`
	// Verdict says it in words, plainly when the sample is too small.
	Verdict string `json:"verdict"`
}

// ElapsedPoint is the cumulative completion rate at one bound of the time since reminder.
type ElapsedPoint struct {
	WithinSeconds float64 `json:"within_seconds"` // 0 for the last point: any time
	Reminded      float64 `json:"reminded"`
	HeldOut       float64 `json:"held_out"`
}

// rowSteps are the steps a Group reports (the denominators aside).
var rowSteps = []string{
	state.StepOpened, state.StepPressed, state.StepResumed, state.StepCompleted,
	state.StepNeedsReview, state.StepApproved, state.StepDeclined, state.StepFailed, state.StepExpired,
}

// Build reads the period's funnel from src and computes the report; now stamps it. The error
// wraps ErrBadRequest for invalid options, or is src's error.
func Build(ctx context.Context, src Source, opts Options, now time.Time) (*Report, error) {
	by := cmp.Or(opts.By, ByStage)
	if !slices.Contains(Dimensions, by) {
		return nil, fmt.Errorf("report by %q: want one of %s: %w", by, strings.Join(Dimensions, ", "), ErrBadRequest)
	}
	if opts.To.Before(opts.From) {
		return nil, fmt.Errorf("report period ends before it starts: %w", ErrBadRequest)
	}
	data, err := src.Funnel(ctx, opts.From, opts.To)
	if err != nil {
		return nil, fmt.Errorf("build report: %w", err)
	}
	return FromFunnel(data, by, now), nil
}

// FromFunnel computes the report of funnel data broken down by dimension by.
func FromFunnel(data *state.FunnelData, by string, now time.Time) *Report {
	r := &Report{
		From: data.From.Format(time.DateOnly), To: data.To.Format(time.DateOnly),
		GeneratedAt: now.UTC(), By: by, Steps: rowSteps, Rows: []Row{},
	}
	unit := UnitInquiries
	if by == ByStage {
		unit = UnitReminders
	}
	rows := map[string]*Row{}
	overall := newRow("all", UnitInquiries)
	for _, c := range data.Counts {
		key := dimension(c.Attribution, by)
		row := rows[key]
		if row == nil {
			row = newRow(key, unit)
			rows[key] = row
		}
		add(row, c, unit)
		add(overall, c, UnitInquiries)
	}
	for _, row := range rows {
		finish(row)
		r.Rows = append(r.Rows, *row)
	}
	slices.SortFunc(r.Rows, func(a, b Row) int {
		if by == ByStage {
			return cmp.Compare(stageSeconds(b.Key), stageSeconds(a.Key)) // longest first
		}
		return strings.Compare(a.Key, b.Key)
	})
	finish(overall)
	r.Overall = *overall
	r.Elapsed = elapsed(data, overall)
	r.Summary = overall.Uplift.Verdict
	return r
}

func newRow(key, unit string) *Row {
	return &Row{Key: key, Unit: unit,
		Reminded: Group{Steps: map[string]int64{}}, HeldOut: Group{Steps: map[string]int64{}}}
}

// add counts c into row.
func add(row *Row, c state.FunnelCount, unit string) {
	g := &row.Reminded
	if c.Attribution.Group == state.GroupHeldOut {
		g = &row.HeldOut
	}
	switch c.Step {
	case state.StepReminder:
		if unit == UnitReminders {
			g.Count += c.Count
		}
	case state.StepInquiry:
		if unit == UnitInquiries {
			g.Count += c.Count
		}
	default:
		g.Steps[c.Step] += c.Count
	}
}

// finish computes a row's rates and uplift.
func finish(row *Row) {
	for _, g := range []*Group{&row.Reminded, &row.HeldOut} {
		for _, st := range rowSteps {
			g.Steps[st] += 0
		}
		g.Completion = Wilson(min(g.Steps[state.StepCompleted], g.Count), g.Count)
	}
	row.Uplift = uplift(row)
}

// uplift compares the row's groups.
func uplift(row *Row) *Uplift {
	n1, n0 := row.Reminded.Count, row.HeldOut.Count
	x1, x0 := min(row.Reminded.Steps[state.StepCompleted], n1), min(row.HeldOut.Steps[state.StepCompleted], n0)
	u := &Uplift{}
	d, ok := Newcombe(x1, n1, x0, n0)
	if !ok {
		switch {
		case n1 == 0 && n0 == 0:
			u.Verdict = "No reminders in this period."
		case n0 == 0:
			u.Verdict = "No held-out inquiries to compare with: set RESUMER_HOLDOUT_PERCENT (e.g. 5) to measure the uplift."
		default:
			u.Verdict = "No reminded inquiries to compare with the held-out ones."
		}
		return u
	}
	u.Difference = d
	n := float64(n1)
	u.Saved = Interval{Value: d.Value * n, Low: d.Low * n, High: d.High * n}
	what := row.Unit
	pts := func(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) }
	switch {
	case n1 < MinSample || n0 < MinSample:
		u.Verdict = fmt.Sprintf("Sample too small to conclude: %d reminded and %d held-out %s (at least %d each needed).", n1, n0, what, MinSample)
	case d.Low > 0:
		u.Conclusive = true
		u.Verdict = fmt.Sprintf("Reminders raise completion by %s points (95%% CI %s to %s): about %.0f verifications saved (%.0f to %.0f).",
			pts(d.Value), pts(d.Low), pts(d.High), u.Saved.Value, u.Saved.Low, u.Saved.High)
	case d.High < 0:
		u.Conclusive = true
		u.Verdict = fmt.Sprintf("Reminded %s complete less often, by %s points (95%% CI %s to %s).", what, pts(-d.Value), pts(d.Low), pts(d.High))
	default:
		u.Verdict = fmt.Sprintf("No significant difference: %s points (95%% CI %s to %s includes zero).", pts(d.Value), pts(d.Low), pts(d.High))
	}
	return u
}

// elapsed returns the cumulative completion rates by time since reminder, over the overall
// row's inquiries.
func elapsed(data *state.FunnelData, overall *Row) []ElapsedPoint {
	var rem, held []int64
	for _, e := range data.Elapsed {
		dst := &rem
		if e.Attribution.Group == state.GroupHeldOut {
			dst = &held
		}
		if *dst == nil {
			*dst = make([]int64, len(e.Buckets))
		}
		for i, n := range e.Buckets {
			if i < len(*dst) {
				(*dst)[i] += n
			}
		}
	}
	points := make([]ElapsedPoint, len(state.FunnelBounds)+1)
	var cr, ch int64
	for i := range points {
		if i < len(rem) {
			cr += rem[i]
		}
		if i < len(held) {
			ch += held[i]
		}
		if i < len(state.FunnelBounds) {
			points[i].WithinSeconds = state.FunnelBounds[i].Seconds()
		}
		points[i].Reminded = ratio(cr, overall.Reminded.Count)
		points[i].HeldOut = ratio(ch, overall.HeldOut.Count)
	}
	return points
}

func ratio(x, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return float64(x) / float64(n)
}

// dimension is a's value of dimension by; "" shows as "(none)".
func dimension(a state.Attribution, by string) string {
	var v string
	switch by {
	case ByChannel:
		v = a.Channel
	case ByLinkMode:
		v = a.LinkMode
	case ByBrand:
		v = a.Brand
	default:
		v = a.Stage
	}
	return cmp.Or(v, "(none)")
}

// stageSeconds orders stage names ("6h", "90m", "45s") by their duration.
func stageSeconds(name string) int64 {
	if len(name) < 2 {
		return 0
	}
	n, err := strconv.ParseInt(name[:len(name)-1], 10, 64)
	if err != nil {
		return 0
	}
	switch name[len(name)-1] {
	case 'h':
		return n * 3600
	case 'm':
		return n * 60
	}
	return n
}

// ParsePeriod turns a "since" value into the first and last day of a report ending on the
// day of now: a duration back from now ("7d", "36h", "30m"), or a first day ("2026-01-02").
// Empty means 7 days. The error wraps ErrBadRequest.
func ParsePeriod(since string, now time.Time) (from, to time.Time, err error) {
	to = now.UTC()
	if since == "" {
		since = "7d"
	}
	if day, err := time.Parse(time.DateOnly, since); err == nil {
		if day.After(to) {
			return time.Time{}, time.Time{}, fmt.Errorf("since %s: in the future: %w", since, ErrBadRequest)
		}
		return day, to, nil
	}
	d, err := parseDays(since)
	if err != nil || d <= 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("since %q: want a duration like 7d or 36h, or a day like 2026-01-02: %w", since, ErrBadRequest)
	}
	return to.Add(-d), to, nil
}

// parseDays parses a Go duration that may also use whole days ("7d").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days > 3650 {
			return 0, fmt.Errorf("bad days %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
