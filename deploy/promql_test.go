package deploy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// This file reads just enough PromQL to check the queries of the alert rules and the
// dashboard against the metric catalog: which series they select with which label matchers,
// and which labels they group by. It is not a PromQL parser (promtool is one, and checks the
// rules' syntax when it is installed); it tokenises and recognises selectors, grouping
// clauses and function calls, which is all the checks need.

// vectorSelector is metric{label op "value", ...} in a query.
type vectorSelector struct {
	name     string
	matchers []labelMatcher
}

type labelMatcher struct {
	label, op, value string
}

// queryRefs is what a query refers to.
type queryRefs struct {
	selectors []vectorSelector
	grouping  []string // labels in by, without, on, ignoring, group_left and group_right
}

type promToken struct {
	kind byte // 'i' identifier, 's' string, 'n' number or duration, 'v' Grafana variable, 'p' punctuation
	text string
}

// promKeywords are identifiers that are neither metrics nor functions.
var promKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true, "start": true, "end": true,
	// Aggregation operators: they may be followed by "by (...)" instead of "(".
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true,
	"stdvar": true, "count": true, "count_values": true, "bottomk": true, "topk": true,
	"quantile": true, "limitk": true, "limit_ratio": true,
}

var groupingKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

func tokenizePromQL(s string) ([]promToken, error) {
	var toks []promToken
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case isIdent(c, true):
			j := i + 1
			for j < len(s) && isIdent(s[j], false) {
				j++
			}
			toks = append(toks, promToken{'i', s[i:j]})
			i = j
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9'):
			j := i + 1
			for j < len(s) && (isIdent(s[j], false) || s[j] == '.') {
				j++
			}
			toks = append(toks, promToken{'n', s[i:j]})
			i = j
		case c == '$':
			j := i + 1
			if j < len(s) && s[j] == '{' {
				k := strings.IndexByte(s[j:], '}')
				if k < 0 {
					return nil, fmt.Errorf("unterminated ${ at %d", i)
				}
				j += k + 1
			} else {
				for j < len(s) && isIdent(s[j], false) {
					j++
				}
			}
			toks = append(toks, promToken{'v', s[i:j]})
			i = j
		case c == '"' || c == '\'' || c == '`':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && c != '`' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			toks = append(toks, promToken{'s', b.String()})
			i = j + 1
		default:
			op := string(c)
			if i+1 < len(s) && slices.Contains([]string{"=~", "!~", "!=", "==", ">=", "<="}, s[i:i+2]) {
				op = s[i : i+2]
			}
			toks = append(toks, promToken{'p', op})
			i += len(op)
		}
	}
	return toks, nil
}

// parsePromQL returns the selectors and grouping labels of a query.
func parsePromQL(expr string) (queryRefs, error) {
	toks, err := tokenizePromQL(expr)
	if err != nil {
		return queryRefs{}, err
	}
	var refs queryRefs
	next := func(i int) promToken {
		if i+1 < len(toks) {
			return toks[i+1]
		}
		return promToken{}
	}
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		switch {
		case tok.kind == 'i' && groupingKeywords[tok.text]:
			if next(i).text != "(" {
				continue
			}
			for i += 2; i < len(toks) && toks[i].text != ")"; i++ {
				if toks[i].kind == 'i' {
					refs.grouping = append(refs.grouping, toks[i].text)
				} else if toks[i].text != "," {
					return queryRefs{}, fmt.Errorf("unexpected %q in %s (...)", toks[i].text, tok.text)
				}
			}
		case tok.kind == 'i' && promKeywords[tok.text]:
		case tok.kind == 'i' && next(i).text == "(":
			// a function call
		case tok.kind == 'i':
			sel := vectorSelector{name: tok.text}
			if next(i).text == "{" {
				if sel.matchers, i, err = parseMatchers(toks, i+1); err != nil {
					return queryRefs{}, err
				}
			}
			refs.selectors = append(refs.selectors, sel)
		case tok.text == "{":
			sel := vectorSelector{}
			if sel.matchers, i, err = parseMatchers(toks, i); err != nil {
				return queryRefs{}, err
			}
			for _, m := range sel.matchers {
				if m.label == "__name__" && m.op == "=" {
					sel.name = m.value
				}
			}
			if sel.name == "" {
				return queryRefs{}, fmt.Errorf("a selector without a metric name")
			}
			refs.selectors = append(refs.selectors, sel)
		case tok.text == "[":
			for i < len(toks) && toks[i].text != "]" {
				i++
			}
		}
	}
	return refs, nil
}

// parseMatchers reads {label op "value", ...} starting at toks[open] == "{" and returns the
// matchers and the index of the closing "}".
func parseMatchers(toks []promToken, open int) ([]labelMatcher, int, error) {
	var ms []labelMatcher
	i := open + 1
	for i < len(toks) && toks[i].text != "}" {
		if toks[i].text == "," {
			i++
			continue
		}
		if i+2 >= len(toks) || toks[i].kind != 'i' || toks[i+2].kind != 's' ||
			!slices.Contains([]string{"=", "!=", "=~", "!~"}, toks[i+1].text) {
			return nil, 0, fmt.Errorf("malformed label matcher near %q", toks[i].text)
		}
		ms = append(ms, labelMatcher{toks[i].text, toks[i+1].text, toks[i+2].text})
		i += 3
	}
	if i >= len(toks) {
		return nil, 0, fmt.Errorf("unterminated {")
	}
	return ms, i, nil
}

var plainValue = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// checkQuery checks a query against the catalog: every series it selects exists, every label
// it matches on or groups by is a label of those series (or a target label), and every plain
// label value it matches exists as a string literal in the Go source, so that a typo such
// as outcome="unavailble" is caught. It returns the series names used.
func (c metricCatalog) checkQuery(expr string) ([]string, []error) {
	refs, err := parsePromQL(expr)
	if err != nil {
		return nil, []error{fmt.Errorf("parse %q: %w", expr, err)}
	}
	if len(refs.selectors) == 0 {
		return nil, []error{fmt.Errorf("%q selects no series", expr)}
	}
	var errs []error
	var names []string
	inScope := slices.Clone(targetLabels)
	for _, sel := range refs.selectors {
		names = append(names, sel.name)
		if _, pending := pendingMetrics[sel.name]; pending {
			continue
		}
		labels, ok := c.series(sel.name)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no such metric in the Go source (nor in externalMetrics or pendingMetrics)", sel.name))
			continue
		}
		inScope = append(inScope, labels...)
		for _, m := range sel.matchers {
			if !slices.Contains(labels, m.label) && !slices.Contains(targetLabels, m.label) {
				errs = append(errs, fmt.Errorf("%s has no label %q (labels: %v)", sel.name, m.label, labels))
				continue
			}
			if slices.Contains(targetLabels, m.label) || m.label == "le" {
				continue
			}
			for _, v := range matcherValues(m) {
				if !c.literals[v] {
					errs = append(errs, fmt.Errorf("%s{%s%s%q}: %q is not a value the Go source uses", sel.name, m.label, m.op, m.value, v))
				}
			}
		}
	}
	for _, l := range refs.grouping {
		if !slices.Contains(inScope, l) {
			errs = append(errs, fmt.Errorf("%q groups by %q, which none of its series has", expr, l))
		}
	}
	return names, errs
}

// matcherValues are the label values of a matcher worth looking up in the source: the value
// of = and !=, the alternatives of a =~ or !~ that are plain words. Numbers (HTTP status
// codes, built with strconv) and patterns are skipped.
func matcherValues(m labelMatcher) []string {
	alts := []string{m.value}
	if m.op == "=~" || m.op == "!~" {
		alts = strings.Split(m.value, "|")
	}
	var vals []string
	for _, v := range alts {
		if plainValue.MatchString(v) {
			vals = append(vals, v)
		}
	}
	return vals
}

func TestParsePromQL(t *testing.T) {
	tests := []struct {
		expr     string
		names    []string
		grouping []string
		matchers int
	}{
		{`up{job="resumer"} == 0`, []string{"up"}, nil, 1},
		{`sum by (namespace, job) (rate(a_total{outcome="x"}[5m])) / sum by (job) (rate(a_total[5m])) > 0.05`, []string{"a_total", "a_total"}, []string{"namespace", "job", "job"}, 1},
		{`histogram_quantile(0.99, sum(rate(h_bucket{job=~"$job"}[$__rate_interval])) by (le))`, []string{"h_bucket"}, []string{"le"}, 1},
		{`label_replace(absent(m{job="resumer"}), "role", "webhook", "", "") or absent(n)`, []string{"m", "n"}, nil, 1},
		{`a and on (instance) (sum by (instance) (rate(b[5m])) > 0)`, []string{"a", "b"}, []string{"instance", "instance"}, 0},
		{`max(x{a="1",b!~"c|d"}) offset 5m`, []string{"x"}, nil, 2},
		{`{__name__="y", job="j"}`, []string{"y"}, nil, 2},
		{`count by (version) (resumer_build_info{job=~"${job}"}) # comment`, []string{"resumer_build_info"}, []string{"version"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			refs, err := parsePromQL(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			matchers := 0
			for _, s := range refs.selectors {
				names = append(names, s.name)
				matchers += len(s.matchers)
			}
			if !slices.Equal(names, tt.names) || !slices.Equal(refs.grouping, tt.grouping) || matchers != tt.matchers {
				t.Errorf("got series %v, grouping %v, %d matchers; want %v, %v, %d", names, refs.grouping, matchers, tt.names, tt.grouping, tt.matchers)
			}
		})
	}
	for _, bad := range []string{`x{a="b"`, `x{a=b}`, `"unterminated`, `sum by (a, "b") (x)`} {
		if _, err := parsePromQL(bad); err == nil {
			t.Errorf("parsePromQL(%q) accepted it", bad)
		}
	}
}

func TestCheckQuery(t *testing.T) {
	c := metrics(t)
	tests := []struct {
		expr string
		ok   bool
	}{
		{`sum by (outcome) (rate(resumer_webhook_requests_total{outcome="unavailable"}[5m]))`, true},
		{`histogram_quantile(0.9, sum by (le) (rate(resumer_webhook_request_duration_seconds_bucket[5m])))`, true},
		{`resumer_webhook_requests_total{outcome="unavailble"}`, false},      // a value the code never uses
		{`resumer_webhook_requests_total{reason="no_match"}`, false},         // a label of another metric
		{`sum by (reason) (resumer_webhook_requests_total)`, false},          // grouping by a missing label
		{`resumer_webhook_request_total`, false},                             // no such metric
		{`resumer_webhook_request_duration_seconds`, false},                  // a histogram has no series of its own name
		{`resumer_persona_requests_total{code=~"5..|error"}`, true},          // patterns and numbers are not looked up
		{`max by (instance) (process_resident_memory_bytes{job="x"})`, true}, // from the Go client's collectors
	}
	for _, tt := range tests {
		_, errs := c.checkQuery(tt.expr)
		if (len(errs) == 0) != tt.ok {
			t.Errorf("checkQuery(%s) = %v, want ok=%v", tt.expr, errs, tt.ok)
		}
	}
}
