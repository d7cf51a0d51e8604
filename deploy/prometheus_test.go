package deploy

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite generated files (the PrometheusRule) instead of comparing them")

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// severities are the values of the severity label, in order of urgency.
var severities = []string{"critical", "warning", "info"}

// templateLabel finds {{ $labels.x }} in annotations.
var templateLabel = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)

func readRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	readYAMLStrict(t, filepath.Join("prometheus", "alerts.yml"), &rf)
	return rf
}

func TestAlertRules(t *testing.T) {
	rf := readRules(t)
	c := metrics(t)
	runbookURL := "https://" + modulePath(t) + "/blob/main/deploy/RUNBOOK.md#"
	runbook := runbookSections(t)
	if len(rf.Groups) == 0 {
		t.Fatal("alerts.yml has no groups")
	}
	seen := map[string]bool{}
	groups := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if len(g.Rules) == 0 {
			t.Errorf("group %s has no rules", g.Name)
		}
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			t.Run(name, func(t *testing.T) {
				if (r.Alert == "") == (r.Record == "") {
					t.Fatalf("a rule needs exactly one of alert and record")
				}
				if seen[name] {
					t.Errorf("%s defined twice", name)
				}
				seen[name] = true
				used, errs := c.checkQuery(r.Expr)
				for _, err := range errs {
					t.Error(err)
				}
				if r.Record != "" {
					return
				}
				if !strings.HasPrefix(r.Alert, "Resumer") {
					t.Errorf("alert names start with Resumer")
				}
				if r.For != "" {
					if _, err := time.ParseDuration(r.For); err != nil {
						t.Errorf("for: %v", err)
					}
				}
				if !slices.Contains(severities, r.Labels["severity"]) {
					t.Errorf("severity %q, want one of %v", r.Labels["severity"], severities)
				}
				for _, key := range []string{"summary", "description", "runbook_url"} {
					if strings.TrimSpace(r.Annotations[key]) == "" {
						t.Errorf("no %s annotation", key)
					}
				}
				anchor := strings.ToLower(r.Alert)
				if want := runbookURL + anchor; r.Annotations["runbook_url"] != want {
					t.Errorf("runbook_url = %q, want %q", r.Annotations["runbook_url"], want)
				}
				if !runbook[anchor] {
					t.Errorf("RUNBOOK.md has no section \"## %s\"", r.Alert)
				}
				// Labels an annotation prints must be on the alert: grouped by, or added by
				// label_replace, or selected by the expression.
				refs, _ := parsePromQL(r.Expr)
				have := slices.Concat(refs.grouping, []string{"job", "instance", "component", "namespace"})
				for _, l := range []string{"role"} {
					if strings.Contains(r.Expr, `"`+l+`"`) {
						have = append(have, l)
					}
				}
				if len(refs.grouping) == 0 {
					for _, s := range used {
						ls, _ := c.series(s)
						have = append(have, ls...)
					}
				}
				for _, a := range r.Annotations {
					for _, m := range templateLabel.FindAllStringSubmatch(a, -1) {
						if !slices.Contains(have, m[1]) {
							t.Errorf("an annotation prints $labels.%s, which the alert does not carry", m[1])
						}
					}
				}
			})
		}
	}
	for anchor := range runbook {
		found := false
		for name := range seen {
			found = found || strings.ToLower(name) == anchor
		}
		if !found {
			t.Errorf("RUNBOOK.md has a section %q for an alert that does not exist", anchor)
		}
	}
}

// runbookSections returns the anchors of RUNBOOK.md's "## Name" headings.
func runbookSections(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("RUNBOOK.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for line := range strings.Lines(string(b)) {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "## "); ok && strings.HasPrefix(name, "Resumer") {
			sections[strings.ToLower(name)] = true
		}
	}
	return sections
}

// modulePath is the module's path from go.mod: the runbook URLs point at its repository.
func modulePath(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.TrimSpace(p)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}

// TestAlertRulesCoverage makes sure the alerts the issue asks for exist.
func TestAlertRulesCoverage(t *testing.T) {
	rf := readRules(t)
	var names []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
		}
	}
	for _, want := range []string{
		"ResumerTargetDown", "ResumerWebhookUnavailable", "ResumerWebhookSignatureFailures",
		"ResumerConsumerLagGrowing", "ResumerDeadLetters", "ResumerRemindersFailing",
		"ResumerReminderBacklog", "ResumerPersonaRateLimited", "ResumerPersonaAuthErrors",
		"ResumerNoWebhooks", "ResumerStateStoreUnavailable", "ResumerEventsUnapplied",
		"ResumerReconcileStalled",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// TestPromtool runs promtool's own checks and the rules' unit tests, when it is installed.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian: apt-get install prometheus): rules syntax and alerts_test.yml not run")
	}
	t.Parallel() // promtool test rules takes a few seconds
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The compose stack's configuration, with the rule file where the container has it.
	cfg, err := os.ReadFile(filepath.Join("prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.ReplaceAll(cfg, []byte("/etc/prometheus/alerts.yml"), []byte(rules))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
}

// scrapeConfig is the part of prometheus.yml the checks read.
type scrapeConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName      string `yaml:"job_name"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
		RelabelConfigs []relabelConfig `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
}

type relabelConfig struct {
	TargetLabel string `yaml:"target_label"`
}

// TestPrometheusConfig checks the compose stack's scrape configuration against the compose
// file: every resumer service is scraped on the admin port as job="resumer" with a component
// label, and the rules are loaded from where the compose file mounts them.
func TestPrometheusConfig(t *testing.T) {
	var cfg scrapeConfig
	readYAML(t, filepath.Join("prometheus", "prometheus.yml"), &cfg)
	compose := readCompose(t)
	mounts := compose.Services["prometheus"].Volumes
	for _, rf := range cfg.RuleFiles {
		if !slices.ContainsFunc(mounts, func(v string) bool { return strings.Contains(v, ":"+rf+":") }) {
			t.Errorf("rule file %s is not mounted into the prometheus service", rf)
		}
	}
	admin := config(t).port(nil, "RESUMER_ADMIN_ADDR")
	var scraped []string
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != "resumer" {
			continue
		}
		for _, d := range sc.DNSSDConfigs {
			if strconv.Itoa(d.Port) != admin {
				t.Errorf("job resumer scrapes port %d, the admin listener is on %s", d.Port, admin)
			}
			scraped = append(scraped, d.Names...)
		}
		if !slices.ContainsFunc(sc.RelabelConfigs, func(r relabelConfig) bool { return r.TargetLabel == "component" }) {
			t.Errorf("job resumer sets no component label")
		}
	}
	if len(scraped) == 0 {
		t.Fatal("prometheus.yml has no job resumer with dns_sd_configs")
	}
	for _, name := range compose.resumerServices() {
		if compose.Services[name].Command[0] != "serve" {
			continue
		}
		if !slices.Contains(scraped, name) {
			t.Errorf("compose service %s runs resumer but job resumer does not scrape it", name)
		}
	}
	for _, name := range scraped {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("job resumer scrapes %s, which is no compose service", name)
		}
	}
}

// TestPrometheusRule keeps the Prometheus Operator's copy of the rules equal to alerts.yml.
// Run `go test ./deploy -run TestPrometheusRule -update` after changing alerts.yml.
func TestPrometheusRule(t *testing.T) {
	path := filepath.Join("k8s", "components", "prometheus-operator", "prometheusrule.yaml")
	src, err := os.ReadFile(filepath.Join("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		var doc yaml.Node
		if err := yaml.Unmarshal(src, &doc); err != nil {
			t.Fatal(err)
		}
		root := doc.Content[0]
		var groups *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "groups" {
				groups = root.Content[i+1]
			}
		}
		out := map[string]any{
			"apiVersion": "monitoring.coreos.com/v1",
			"kind":       "PrometheusRule",
			"metadata":   map[string]any{"name": "resumer", "labels": map[string]string{"app.kubernetes.io/name": "resumer"}},
			"spec":       map[string]any{"groups": groups},
		}
		var b bytes.Buffer
		b.WriteString("# Generated from deploy/prometheus/alerts.yml by\n#   go test ./deploy -run TestPrometheusRule -update\n# Do not edit: change alerts.yml and regenerate.\n")
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(out); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var want, got struct {
		Groups any `yaml:"groups"`
	}
	if err := yaml.Unmarshal(src, &want); err != nil {
		t.Fatal(err)
	}
	var pr struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			Groups any `yaml:"groups"`
		} `yaml:"spec"`
	}
	readYAML(t, path, &pr)
	got.Groups = pr.Spec.Groups
	if pr.Kind != "PrometheusRule" || pr.APIVersion != "monitoring.coreos.com/v1" {
		t.Errorf("%s is a %s %s", path, pr.APIVersion, pr.Kind)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s differs from prometheus/alerts.yml: run go test ./deploy -run TestPrometheusRule -update", path)
	}
}
