package deploy

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// pendingMetrics are metrics the alert rules or the dashboard use before the Go source
// registers them, with the reason. A name listed here passes the existence check (its labels
// are not checked) and is logged; TestPendingListsAreCurrent fails once it is registered.
// None at the moment: every metric the deploy files use is registered.
var pendingMetrics = map[string]string{}

// externalMetrics are the series the rules and the dashboard use that resumer's own code does
// not define, each with the source text in cmd/resumer that proves the binary exports it
// ("" for series Prometheus itself adds to every target).
var externalMetrics = map[string]string{
	"up":                            "", // Prometheus: 1 when the scrape succeeded
	"go_goroutines":                 "collectors.NewGoCollector",
	"process_resident_memory_bytes": "collectors.NewProcessCollector",
	"process_cpu_seconds_total":     "collectors.NewProcessCollector",
	"process_start_time_seconds":    "collectors.NewProcessCollector",
}

// targetLabels are the labels a scrape adds to every series: job and instance from
// Prometheus, component from our relabelling (prometheus.yml, the ServiceMonitor), the rest
// from Kubernetes service discovery.
var targetLabels = []string{"job", "instance", "component", "namespace", "pod", "container", "service", "endpoint"}

// metricDef is one collector found in the Go source.
type metricDef struct {
	name   string
	kind   string // Counter, Gauge, Histogram, Summary
	labels []string
	pos    string
}

// metricCatalog is what the module's non-test Go source registers, and every string literal
// in it (label values are checked against those).
type metricCatalog struct {
	metrics  map[string]metricDef
	literals map[string]bool
	sources  string // all of cmd/resumer's source, for externalMetrics' proofs
}

var (
	catalogOnce sync.Once
	catalog     metricCatalog
	catalogErrs []error
)

// metrics returns the catalog of the module's metrics, built once from the source.
func metrics(t *testing.T) metricCatalog {
	t.Helper()
	catalogOnce.Do(func() { catalog, catalogErrs = loadCatalog(repoRoot(t)) })
	for _, err := range catalogErrs {
		t.Errorf("metric catalog: %v", err)
	}
	if len(catalog.metrics) == 0 {
		t.Fatal("metric catalog: no metric found in the Go source")
	}
	return catalog
}

var newCollector = regexp.MustCompile(`^New(Counter|Gauge|Histogram|Summary)(Vec|Func)?$`)

// loadCatalog parses every non-test .go file of the module outside deploy/ and collects
// prometheus.New{Counter,Gauge,Histogram,Summary}[Vec|Func] calls (also through promauto's
// factory) whose options name a metric. A name or label list that is not a literal is an
// error: the checks would otherwise miss it.
func loadCatalog(root string) (metricCatalog, []error) {
	c := metricCatalog{metrics: map[string]metricDef{}, literals: map[string]bool{}}
	var errs []error
	var cmdSrc strings.Builder
	fset := token.NewFileSet()
	walkErr := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" || rel == "deploy") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, filepath.Join("cmd", "resumer")+string(filepath.Separator)) {
			cmdSrc.Write(src)
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind == token.STRING {
					if s, err := strconv.Unquote(n.Value); err == nil {
						c.literals[s] = true
					}
				}
			case *ast.CallExpr:
				def, ok, err := collectorCall(n)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", fset.Position(n.Pos()), err))
				}
				if ok {
					def.pos = fset.Position(n.Pos()).String()
					if prev, dup := c.metrics[def.name]; dup && (prev.kind != def.kind || strings.Join(prev.labels, ",") != strings.Join(def.labels, ",")) {
						errs = append(errs, fmt.Errorf("%s: %s defined differently at %s", def.pos, def.name, prev.pos))
					}
					c.metrics[def.name] = def
				}
			}
			return true
		})
		return nil
	})
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	c.sources = cmdSrc.String()
	return c, errs
}

// collectorCall recognises a collector constructor call and returns the metric it defines.
func collectorCall(call *ast.CallExpr) (metricDef, bool, error) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return metricDef{}, false, nil
	}
	m := newCollector.FindStringSubmatch(sel.Sel.Name)
	if m == nil || len(call.Args) == 0 {
		return metricDef{}, false, nil
	}
	opts, ok := call.Args[0].(*ast.CompositeLit)
	if !ok {
		return metricDef{}, false, nil
	}
	parts := map[string]string{}
	for _, elt := range opts.Elts {
		kv, ok := elt.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		key, ok := kv.Key.(*ast.Ident)
		if !ok || (key.Name != "Name" && key.Name != "Namespace" && key.Name != "Subsystem") {
			continue
		}
		lit, ok := kv.Value.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return metricDef{}, false, fmt.Errorf("%s: %s is not a string literal", sel.Sel.Name, key.Name)
		}
		parts[key.Name], _ = strconv.Unquote(lit.Value)
	}
	if parts["Name"] == "" {
		return metricDef{}, false, nil
	}
	var name []string
	for _, k := range []string{"Namespace", "Subsystem", "Name"} {
		if parts[k] != "" {
			name = append(name, parts[k])
		}
	}
	def := metricDef{name: strings.Join(name, "_"), kind: m[1]}
	if m[2] == "Vec" {
		if len(call.Args) < 2 {
			return metricDef{}, false, fmt.Errorf("%s %s: no label names", sel.Sel.Name, def.name)
		}
		list, ok := call.Args[1].(*ast.CompositeLit)
		if !ok {
			return metricDef{}, false, fmt.Errorf("%s %s: label names are not a literal list", sel.Sel.Name, def.name)
		}
		for _, e := range list.Elts {
			lit, ok := e.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return metricDef{}, false, fmt.Errorf("%s %s: a label name is not a string literal", sel.Sel.Name, def.name)
			}
			l, _ := strconv.Unquote(lit.Value)
			def.labels = append(def.labels, l)
		}
	}
	return def, true, nil
}

// series resolves a series name a query selects to its metric and the labels it carries
// besides the target labels: a histogram's _bucket (with le), _sum and _count, a summary's
// quantiles, _sum and _count. known is false for a name nothing defines.
func (c metricCatalog) series(name string) (labels []string, known bool) {
	if def, ok := c.metrics[name]; ok && def.kind != "Histogram" {
		if def.kind == "Summary" {
			return slices.Concat(def.labels, []string{"quantile"}), true
		}
		return def.labels, true
	}
	for suffix, extra := range map[string]string{"_bucket": "le", "_sum": "", "_count": ""} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		def, ok := c.metrics[base]
		if !ok || (def.kind != "Histogram" && def.kind != "Summary") || (suffix == "_bucket" && def.kind != "Histogram") {
			continue
		}
		if extra != "" {
			return slices.Concat(def.labels, []string{extra}), true
		}
		return def.labels, true
	}
	if _, ok := externalMetrics[name]; ok {
		return nil, true
	}
	return nil, false
}

var metricLiteral = regexp.MustCompile(`^resumer_[a-z0-9_]*[a-z0-9]$`)

// TestMetricCatalog checks the catalog against a plain search of the source: every string
// literal that looks like a resumer metric name must be a metric the catalog found, so a
// collector built in a way loadCatalog does not recognise is noticed rather than missed.
func TestMetricCatalog(t *testing.T) {
	c := metrics(t)
	for lit := range c.literals {
		if !metricLiteral.MatchString(lit) {
			continue
		}
		if _, ok := c.metrics[lit]; !ok {
			t.Errorf("the source has the string %q but the catalog has no such metric: teach loadCatalog how it is registered", lit)
		}
	}
	for _, name := range []string{"resumer_build_info", "resumer_webhook_requests_total", "resumer_worker_events_total"} {
		if _, ok := c.metrics[name]; !ok {
			t.Errorf("catalog has no %s", name)
		}
	}
	for name, proof := range externalMetrics {
		if proof != "" && !strings.Contains(c.sources, proof) {
			t.Errorf("%s is allowed because cmd/resumer uses %s, which it no longer does", name, proof)
		}
	}
	if testing.Verbose() {
		for _, name := range sortedKeys(c.metrics) {
			def := c.metrics[name]
			t.Logf("%s %s%v", def.kind, name, def.labels)
		}
	}
}
