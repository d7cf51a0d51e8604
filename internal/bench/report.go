package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one harness run: the machine, and one Table per scenario run.
type Report struct {
	// Run is the run id; it names the run's streams and Redis keys.
	Run       string    `json:"run"`
	StartedAt time.Time `json:"started_at"`
	// Elapsed is the wall time of the whole run, in seconds.
	Elapsed float64  `json:"elapsed_s"`
	Machine Machine  `json:"machine"`
	Tables  []*Table `json:"scenarios"`
}

// Table is one scenario's result: rows to print, the targets it checks and its figures in a
// machine-readable form.
type Table struct {
	Scenario string     `json:"scenario"`
	Title    string     `json:"title"`
	Columns  []string   `json:"columns"`
	Rows     [][]string `json:"rows"`
	Targets  []Target   `json:"targets,omitempty"`
	// Metrics are the scenario's figures by name (rates in per second, times in
	// milliseconds, sizes in bytes, unless the name says otherwise).
	Metrics map[string]float64 `json:"metrics"`
	Notes   []string           `json:"notes,omitempty"`
	// Elapsed is the scenario's wall time, setup and cleanup included, in seconds.
	Elapsed float64 `json:"elapsed_s"`
}

// Target is one target of the issue, checked against this run's figures.
type Target struct {
	Name string `json:"name"`
	// Want says what meets the target, e.g. "≥ 0.5 × baseline".
	Want string `json:"want"`
	// Got is the figure as printed, e.g. "0.62 × (3114/s vs 5022/s)".
	Got string `json:"got"`
	// Value is the figure compared with the target (a ratio, milliseconds, bytes, ...).
	Value float64 `json:"value"`
	Met   bool    `json:"met"`
}

func newTable(scenario, title string, columns ...string) *Table {
	return &Table{Scenario: scenario, Title: title, Columns: columns, Metrics: map[string]float64{}}
}

func (t *Table) row(cells ...string) { t.Rows = append(t.Rows, cells) }

func (t *Table) note(format string, args ...any) {
	t.Notes = append(t.Notes, fmt.Sprintf(format, args...))
}

func (t *Table) target(name, want string, value float64, met bool, got string) {
	t.Targets = append(t.Targets, Target{Name: name, Want: want, Got: got, Value: value, Met: met})
}

// Print writes the table, its targets and its notes as aligned text.
func (t *Table) Print(w io.Writer) {
	fmt.Fprintf(w, "\n== %s: %s (%.1fs)\n", t.Scenario, t.Title, t.Elapsed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, strings.Join(t.Columns, "\t")+"\t")
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
	for _, g := range t.Targets {
		mark := "MET   "
		if !g.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  target %s %s: want %s, got %s\n", mark, g.Name, g.Want, g.Got)
	}
	for _, n := range t.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// Print writes the machine line and every table.
func (r *Report) Print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "resumer bench run %s, %s: %s %s/%s, %d CPUs (GOMAXPROCS %d), %s RAM, redis %s, nats %s\n",
		r.Run, r.StartedAt.UTC().Format(time.RFC3339), m.GoVersion, m.GOOS, m.GOARCH, m.CPUs, m.GOMAXPROCS,
		m.Memory, m.RedisVersion, m.NATS)
	if m.NATSSync != "" {
		fmt.Fprintf(w, "nats sync_interval %s\n", m.NATSSync)
	}
	for _, t := range r.Tables {
		t.Print(w)
	}
	met, missed := 0, 0
	for _, t := range r.Tables {
		for _, g := range t.Targets {
			if g.Met {
				met++
			} else {
				missed++
			}
		}
	}
	fmt.Fprintf(w, "\n%d targets met, %d missed, in %.1fs\n", met, missed, r.Elapsed)
}

// rate formats events per second.
func rate(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + "/s"
	default:
		return strconv.FormatFloat(v, 'f', 1, 64) + "/s"
	}
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	default:
		return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
	}
}

// us formats a duration in microseconds, e.g. "31.6 µs".
func us(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 1, 64) + " µs"
}

// perReq formats a per-request count with two decimals, "-" when negative (unknown).
func perReq(v float64) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s" }

func itoa(n int) string { return strconv.Itoa(n) }

func ratio(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "×" }

// median returns the median of vs (the mean of the middle two for an even count); NaN for
// none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile returns the p-th percentile (0..100, nearest rank) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
