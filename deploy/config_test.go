package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// pendingRoles are roles the deployment files already give RESUMER_ROLES although
// cmd/resumer does not accept them yet, each with the reason. A role listed here is accepted
// by the checks and logged; once the README's configuration table lists it,
// TestPendingListsAreCurrent fails until the entry is removed. Keep entries short-lived.
// None at the moment.
var pendingRoles = map[string]string{}

// pendingSettings are RESUMER_ variables the deployment files use before cmd/resumer reads
// them, with the reason; same rules as pendingRoles. None at the moment.
var pendingSettings = map[string]string{}

// runtimeEnv are the variables resumer's containers may set that are not resumer settings.
var runtimeEnv = map[string]string{
	"GOMEMLIMIT": "the Go runtime's soft memory limit, set from the container's memory limit",
}

// sharedSettings must have the same value in every resumer process of one deployment: they
// name the streams, consumer and Redis keys all roles share, the reminder schedule the
// worker writes and the notifier reads, the links api and notify both build, and the
// Persona budget every replica draws from.
var sharedSettings = []string{
	"RESUMER_NATS_URL", "RESUMER_STREAM", "RESUMER_SUBJECT_PREFIX", "RESUMER_STREAM_REPLICAS", "RESUMER_STREAM_MAX_AGE",
	"RESUMER_DEDUP_WINDOW", "RESUMER_DLQ_STREAM", "RESUMER_CONSUMER", "RESUMER_REDIS_PREFIX",
	"RESUMER_REDIS_SHARDS", "RESUMER_EVENT_MEMORY", "RESUMER_RETENTION", "RESUMER_EXPIRY_DEFAULT",
	"RESUMER_EXPIRY_BY_TEMPLATE", "RESUMER_REMIND_BEFORE", "RESUMER_PERSONA_RATE",
	"RESUMER_PUBLIC_URL", "RESUMER_HOSTED_FLOW_URL", "RESUMER_REDIRECT_URI",
}

// checkShared reports the sharedSettings whose values differ between the processes in envs
// (process name -> environment).
func (c configTable) checkShared(envs map[string]map[string]string) []error {
	var errs []error
	for _, name := range sharedSettings {
		if _, ok := c.settings[name]; !ok {
			errs = append(errs, fmt.Errorf("sharedSettings lists %s, which is not a setting", name))
			continue
		}
		values := map[string][]string{}
		for _, proc := range sortedKeys(envs) {
			v := c.value(envs[proc], name)
			values[v] = append(values[v], proc)
		}
		if len(values) > 1 {
			errs = append(errs, fmt.Errorf("%s differs between processes that share it: %v", name, values))
		}
	}
	return errs
}

// setting is one row of the README's configuration table.
type setting struct {
	name   string // RESUMER_...
	def    string // default, "" when none
	usage  string
	secret bool // may also come from name+"_FILE"
}

// configTable is the README's configuration table: every variable resumer reads.
type configTable struct {
	settings map[string]setting
	roles    []string // the values RESUMER_ROLES accepts
}

var (
	tableOnce sync.Once
	table     configTable
	tableErr  error
)

// config returns the README's configuration table, parsed once.
func config(t *testing.T) configTable {
	t.Helper()
	tableOnce.Do(func() {
		var b []byte
		if b, tableErr = os.ReadFile(filepath.Join(repoRoot(t), "README.md")); tableErr == nil {
			table, tableErr = parseConfigTable(b)
		}
	})
	if tableErr != nil {
		t.Fatalf("read the configuration table from README.md: %v", tableErr)
	}
	return table
}

var configRow = regexp.MustCompile("^\\| `(RESUMER_[A-Z0-9_]+)` \\| `--[a-z0-9-]+` \\| (–|`([^`]*)`) \\| (.*) \\|$")

// parseConfigTable reads the rows between <!-- config:begin --> and <!-- config:end -->.
func parseConfigTable(readme []byte) (configTable, error) {
	_, rest, ok := bytes.Cut(readme, []byte("<!-- config:begin -->"))
	if !ok {
		return configTable{}, fmt.Errorf("no <!-- config:begin --> marker")
	}
	body, _, ok := bytes.Cut(rest, []byte("<!-- config:end -->"))
	if !ok {
		return configTable{}, fmt.Errorf("no <!-- config:end --> marker")
	}
	c := configTable{settings: map[string]setting{}}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "| `RESUMER_") {
			continue
		}
		m := configRow.FindStringSubmatch(line)
		if m == nil {
			return configTable{}, fmt.Errorf("unexpected configuration row %q", line)
		}
		s := setting{name: m[1], def: m[3], usage: m[4]}
		s.secret = strings.Contains(s.usage, "also `"+s.name+"_FILE`")
		c.settings[s.name] = s
	}
	if len(c.settings) == 0 {
		return configTable{}, fmt.Errorf("the table between the config markers is empty (run `go run ./cmd/resumer config`)")
	}
	roles, ok := c.settings["RESUMER_ROLES"]
	if !ok {
		return configTable{}, fmt.Errorf("no RESUMER_ROLES row")
	}
	_, list, ok := strings.Cut(roles.usage, "subset of ")
	if !ok {
		return configTable{}, fmt.Errorf("RESUMER_ROLES: cannot find the roles in %q", roles.usage)
	}
	for r := range strings.SplitSeq(list, ",") {
		c.roles = append(c.roles, strings.TrimSpace(r))
	}
	return c, nil
}

// checkEnvName says why name is not something resumer reads, or nil.
func (c configTable) checkEnvName(name string) error {
	if _, ok := c.settings[name]; ok {
		return nil
	}
	if base, ok := strings.CutSuffix(name, "_FILE"); ok {
		if s, ok := c.settings[base]; ok {
			if !s.secret {
				return fmt.Errorf("%s: %s cannot be read from a file (only secrets have a _FILE form)", name, base)
			}
			return nil
		}
	}
	if _, ok := runtimeEnv[name]; ok {
		return nil
	}
	if _, ok := pendingSettings[name]; ok {
		return nil
	}
	return fmt.Errorf("%s is not a resumer setting (README.md's configuration table)", name)
}

// checkEnv checks the variables one resumer process gets: every name is a setting, no secret
// is given both directly and as a _FILE (the direct value would win and the file be
// ignored), and RESUMER_ROLES names known roles.
func (c configTable) checkEnv(env map[string]string) []error {
	var errs []error
	for _, name := range sortedKeys(env) {
		if err := c.checkEnvName(name); err != nil {
			errs = append(errs, err)
			continue
		}
		if base, ok := strings.CutSuffix(name, "_FILE"); ok {
			if _, both := env[base]; both {
				errs = append(errs, fmt.Errorf("%s and %s are both set: the file would be ignored", base, name))
			}
		}
	}
	if roles, ok := env["RESUMER_ROLES"]; ok {
		if _, err := c.parseRoles(roles); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// parseRoles splits a RESUMER_ROLES value and checks each role.
func (c configTable) parseRoles(v string) ([]string, error) {
	var roles []string
	for r := range strings.SplitSeq(v, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(c.roles, r) {
			if _, ok := pendingRoles[r]; !ok {
				return nil, fmt.Errorf("RESUMER_ROLES=%s: unknown role %q (want %s)", v, r, strings.Join(c.roles, ", "))
			}
		}
		roles = append(roles, r)
	}
	return roles, nil
}

// value returns what resumer would use for a setting given env: the value, else the default.
func (c configTable) value(env map[string]string, name string) string {
	if v, ok := env[name]; ok {
		return v
	}
	return c.settings[name].def
}

// port returns the port of a host:port setting (":9464" -> "9464").
func (c configTable) port(env map[string]string, name string) string {
	v := c.value(env, name)
	i := strings.LastIndex(v, ":")
	if i < 0 {
		return ""
	}
	return v[i+1:]
}

func TestConfigTable(t *testing.T) {
	c := config(t)
	for _, name := range []string{"RESUMER_ROLES", "RESUMER_HTTP_ADDR", "RESUMER_ADMIN_ADDR", "RESUMER_NATS_URL", "RESUMER_REDIS_URL", "RESUMER_WEBHOOK_SECRETS", "RESUMER_SHUTDOWN_TIMEOUT"} {
		if _, ok := c.settings[name]; !ok {
			t.Errorf("README's configuration table has no %s", name)
		}
	}
	if !c.settings["RESUMER_WEBHOOK_SECRETS"].secret {
		t.Errorf("RESUMER_WEBHOOK_SECRETS has no _FILE form in the table")
	}
	for _, r := range []string{"webhook", "worker"} {
		if !slices.Contains(c.roles, r) {
			t.Errorf("RESUMER_ROLES does not list role %q: %v", r, c.roles)
		}
	}
	if got := c.port(nil, "RESUMER_ADMIN_ADDR"); got != "9464" {
		t.Errorf("admin port = %q, the deployment files assume 9464", got)
	}
	if got := c.port(nil, "RESUMER_HTTP_ADDR"); got != "8080" {
		t.Errorf("http port = %q, the deployment files assume 8080", got)
	}

	tests := []struct {
		env  map[string]string
		errs int
	}{
		{map[string]string{"RESUMER_ROLES": "webhook,worker", "RESUMER_LOG_LEVEL": "info"}, 0},
		{map[string]string{"RESUMER_REDIS_URL_FILE": "/s/redis"}, 0},
		{map[string]string{"GOMEMLIMIT": "1"}, 0},
		{map[string]string{"RESUMER_NO_SUCH": "x"}, 1},
		{map[string]string{"RESUMER_LOG_LEVEL_FILE": "/s/x"}, 1},
		{map[string]string{"RESUMER_REDIS_URL": "redis://x", "RESUMER_REDIS_URL_FILE": "/s/redis"}, 1},
		{map[string]string{"RESUMER_ROLES": "webhook,nope"}, 1},
	}
	for _, tt := range tests {
		if errs := c.checkEnv(tt.env); len(errs) != tt.errs {
			t.Errorf("checkEnv(%v) = %v, want %d errors", tt.env, errs, tt.errs)
		}
	}
}

// TestPendingListsAreCurrent fails when an allow-list entry has become real, so the lists
// only ever hold what is really still missing, and logs what they hold.
func TestPendingListsAreCurrent(t *testing.T) {
	c := config(t)
	for r, why := range pendingRoles {
		if slices.Contains(c.roles, r) {
			t.Errorf("role %q is real now: remove it from pendingRoles", r)
		} else {
			t.Logf("pending role %q accepted without being real: %s", r, why)
		}
	}
	for s, why := range pendingSettings {
		if _, ok := c.settings[s]; ok {
			t.Errorf("%s is real now: remove it from pendingSettings", s)
		} else {
			t.Logf("pending setting %s accepted without being real: %s", s, why)
		}
	}
	cat := metrics(t)
	for m, why := range pendingMetrics {
		if _, ok := cat.metrics[m]; ok {
			t.Errorf("metric %s is registered now: remove it from pendingMetrics", m)
		} else {
			t.Logf("pending metric %s accepted without being registered: %s", m, why)
		}
	}
}

// repoRoot is the module's root directory: go test runs in the package's directory, deploy/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
