package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/resumer/resumer/state"
)

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// tableSteps are the step columns of the text table, with their headings.
var tableSteps = []struct{ step, head string }{
	{state.StepOpened, "opened"}, {state.StepPressed, "pressed"}, {state.StepResumed, "resumed"},
	{state.StepCompleted, "completed"}, {state.StepApproved, "approved"}, {state.StepDeclined, "declined"},
	{state.StepNeedsReview, "review"}, {state.StepFailed, "failed"}, {state.StepExpired, "expired"},
}

// WriteText writes r as a table: per row, the reminded and held-out funnels and the uplift.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Recovery funnel %s to %s (UTC days), by %s\n\n", r.From, r.To, r.By)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{r.By, "group", "count"}
	for _, s := range tableSteps {
		head = append(head, s.head)
	}
	head = append(head, "completion (95% CI)")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	rows := append(append([]Row(nil), r.Rows...), r.Overall)
	for _, row := range rows {
		for _, g := range []struct {
			name string
			g    Group
		}{{"reminded", row.Reminded}, {"held out", row.HeldOut}} {
			cells := []string{row.Key, g.name, fmt.Sprint(g.g.Count)}
			for _, s := range tableSteps {
				cells = append(cells, fmt.Sprint(g.g.Steps[s.step]))
			}
			cells = append(cells, rateCell(g.g))
			fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\nCounts are " + UnitReminders + " in rows by stage, " + UnitInquiries + " elsewhere.\n\nUplift (reminded minus held-out completion rate):\n")
	for _, row := range rows {
		fmt.Fprintf(&b, "  %s: %s\n", row.Key, row.Uplift.Verdict)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// rateCell is "42.0% (38.1-46.0)", or "-" without a count.
func rateCell(g Group) string {
	if g.Count == 0 {
		return "-"
	}
	c := g.Completion
	return fmt.Sprintf("%.1f%% (%.1f-%.1f)", 100*c.Value, 100*c.Low, 100*c.High)
}
