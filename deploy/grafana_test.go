package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// notOnDashboard are resumer metrics the dashboard deliberately does not show, with the
// reason. Any other metric the code registers must appear on it. None at the moment.
var notOnDashboard = map[string]string{}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr         string         `json:"expr"`
		LegendFormat string         `json:"legendFormat"`
		RefID        string         `json:"refId"`
		Datasource   *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

var legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
var labelValuesQuery = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

func TestDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("grafana", "resumer.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("resumer.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("uid %q, title %q, schemaVersion %d: all three are needed", d.UID, d.Title, d.SchemaVersion)
	}
	c := metrics(t)

	// A datasource variable, used by every panel and target: the dashboard works with any
	// Prometheus data source, not just the compose stack's.
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		switch v.Type {
		case "datasource":
			if string(v.Query) != `"prometheus"` {
				t.Errorf("variable %s: query %s, want \"prometheus\"", v.Name, v.Query)
			}
		case "query":
			m := labelValuesQuery.FindStringSubmatch(v.Definition)
			if m == nil {
				t.Errorf("variable %s: definition %q is not label_values(metric, label)", v.Name, v.Definition)
				continue
			}
			labels, ok := c.series(m[1])
			if !ok || !slices.Contains(slices.Concat(labels, targetLabels), m[2]) {
				t.Errorf("variable %s: %s has no label %s", v.Name, m[1], m[2])
			}
			if !bytes.Contains(v.Query, []byte(v.Definition)) {
				t.Errorf("variable %s: query %s differs from its definition", v.Name, v.Query)
			}
			checkDatasource(t, "variable "+v.Name, v.Datasource)
		}
	}
	if !vars["datasource"] {
		t.Fatal("no datasource variable")
	}

	ids := map[int]string{}
	used := map[string]bool{}
	var placed []panel
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.ID == 0 {
				t.Errorf("panel %q has no id", p.Title)
			} else if other, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			if p.Title == "" {
				t.Errorf("panel %d has no title", p.ID)
			}
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
			}
			for _, q := range placed {
				o := q.GridPos
				if g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H {
					t.Errorf("panels %q and %q overlap", p.Title, q.Title)
				}
			}
			placed = append(placed, p)
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			checkDatasource(t, "panel "+p.Title, p.Datasource)
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				where := "panel " + p.Title + " " + tg.RefID
				if tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("%s: refId empty or repeated", where)
				}
				refs[tg.RefID] = true
				checkDatasource(t, where, tg.Datasource)
				if !strings.Contains(tg.Expr, `job=~"$job"`) {
					t.Errorf("%s: %s does not filter by the job variable", where, tg.Expr)
				}
				names, errs := c.checkQuery(tg.Expr)
				for _, err := range errs {
					t.Errorf("%s: %v", where, err)
				}
				for _, n := range names {
					used[n] = true
				}
				// A legend label must survive the query's aggregation.
				q, _ := parsePromQL(tg.Expr)
				for _, m := range legendLabel.FindAllStringSubmatch(tg.LegendFormat, -1) {
					if !slices.Contains(q.grouping, m[1]) {
						t.Errorf("%s: legend {{%s}} but the query does not keep that label", where, m[1])
					}
				}
			}
		}
	}
	walk(d.Panels)

	// Every metric the code registers is on the dashboard, for each concern the issue lists.
	for name, def := range c.metrics {
		if _, skip := notOnDashboard[name]; skip || !strings.HasPrefix(name, "resumer_") {
			continue
		}
		shown := used[name]
		if def.kind == "Histogram" {
			shown = used[name+"_bucket"] || used[name+"_count"]
		}
		if !shown {
			t.Errorf("%s (%s) is on no panel: add one, or list it in notOnDashboard with the reason", name, def.pos)
		}
	}
}

func checkDatasource(t *testing.T, where string, ds *datasourceRef) {
	t.Helper()
	if ds == nil || ds.Type != "prometheus" || ds.UID != "${datasource}" {
		t.Errorf("%s: datasource %+v, want {prometheus ${datasource}}", where, ds)
	}
}
