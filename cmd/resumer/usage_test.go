package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// commandPaths are every command and subcommand a user can ask for help.
var commandPaths = [][]string{
	{"serve"}, {"dev"}, {"webhook"}, {"webhook", "sign"}, {"webhook", "send"},
	{"inquiry"}, {"inquiry", "show"}, {"inquiry", "expiring"}, {"dlq"}, {"dlq", "list"},
	{"dlq", "replay"}, {"persona-sim"}, {"bench"}, {"config", "check"}, {"config"},
	{"reconcile"}, {"report"},
}

// TestCommandPathsCoverUsage keeps commandPaths complete: every command the usage lists is
// in it, so the help tests cover commands added later.
func TestCommandPathsCoverUsage(t *testing.T) {
	have := map[string]bool{}
	for _, p := range commandPaths {
		have[p[0]] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z][a-z-]*)`).FindAllStringSubmatch(usage, -1) {
		if name := m[1]; name != "version" && !have[name] {
			t.Errorf("command %q is in the usage but not in commandPaths", name)
		}
	}
}

// TestHelpExitsZero: -h and --help on every command print its help and succeed.
func TestHelpExitsZero(t *testing.T) {
	for _, path := range commandPaths {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string{}, path...), h)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				if err := run(context.Background(), args, env(nil), strings.NewReader(""), &stdout, &stderr); err != nil {
					t.Fatalf("err = %v", err)
				}
				if stdout.Len()+stderr.Len() == 0 {
					t.Errorf("no help printed")
				}
			})
		}
	}
}

// helpOf returns a command's -h output.
func helpOf(t *testing.T, path ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), append(path, "-h"), env(nil), strings.NewReader(""), &out, &out); err != nil {
		t.Fatalf("%v -h: %v", path, err)
	}
	return out.String()
}

// TestFlagHelpIsReadable: configuration flags show their real type, and a back-quoted word of
// a help text is not turned into the argument's name (flag.PrintDefaults does that).
func TestFlagHelpIsReadable(t *testing.T) {
	help := helpOf(t, "serve")
	for _, want := range []string{
		"--batch-size int\n", "--notify-lease duration\n", "--redis-url string\n",
		"--smtp-require-tls bool\n", "--remind-before durations\n", "--roles list\n",
		"(env RESUMER_BATCH_SIZE) (default 256)",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("serve -h lacks %q", want)
		}
	}
	if strings.Contains(help, "`") || strings.Contains(help, "--roles serve") {
		t.Errorf("serve -h shows back-quotes or a back-quoted word as an argument name:\n%s", help)
	}
	if dev := helpOf(t, "dev"); !strings.Contains(dev, "--demo\n") {
		t.Errorf("dev -h lacks --demo:\n%s", dev)
	}
}

// TestUsageListsEverySubcommandFlag: the top-level usage names every flag a subcommand has
// of its own (configuration flags are listed by "serve -h"; bench points to its own -h).
func TestUsageListsEverySubcommandFlag(t *testing.T) {
	byFlag := settingByFlag()
	flagRE := regexp.MustCompile(`(?m)^  --([a-z0-9-]+)`)
	for _, path := range commandPaths {
		if path[0] == "bench" {
			continue
		}
		for _, m := range flagRE.FindAllStringSubmatch(helpOf(t, path...), -1) {
			name := m[1]
			if _, ok := byFlag[name]; ok {
				continue
			}
			if !strings.Contains(usage, "--"+name) {
				t.Errorf("usage does not mention %s's flag --%s", strings.Join(path, " "), name)
			}
		}
	}
	if !strings.Contains(usage, `"resumer bench -h"`) {
		t.Errorf("usage does not point to bench -h")
	}
}

// TestConfigCheck: config check prints the effective configuration with secrets masked and
// exits non-zero on any problem, cross-checks included.
func TestConfigCheck(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("wbhsec_from_file\n"), 0o600)
	good := map[string]string{
		"RESUMER_ROLES":           "webhook,worker",
		"RESUMER_WEBHOOK_SECRETS": "wbhsec_very_secret_value",
		"RESUMER_REDIS_URL":       "redis://user:hunter2@127.0.0.1:6379/0",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		for k, v := range extra {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string // in the error or the output; empty: success
	}{
		{name: "good", env: good},
		{name: "retention below event memory", env: with(map[string]string{"RESUMER_RETENTION": "1h", "RESUMER_EVENT_MEMORY": "72h"}), wantErr: "RESUMER_RETENTION (1h0m0s) is shorter than RESUMER_EVENT_MEMORY"},
		{name: "min remaining not below smallest stage", env: with(map[string]string{"RESUMER_MIN_REMAINING": "1h", "RESUMER_REMIND_BEFORE": "6h,1h"}), wantErr: "RESUMER_MIN_REMAINING (1h0m0s) is not below the smallest stage"},
		{name: "lease too short", env: with(map[string]string{"RESUMER_ROLES": "notify", "RESUMER_NOTIFY_LEASE": "5s", "RESUMER_SMTP_URL": "smtp://127.0.0.1:25", "RESUMER_PERSONA_API_KEY": "k"}), wantErr: "RESUMER_NOTIFY_LEASE (5s) is shorter"},
		{name: "webhook role without secret", env: with(map[string]string{"RESUMER_WEBHOOK_SECRETS": ""}), wantErr: "RESUMER_WEBHOOK_SECRETS: required"},
		{name: "notify role needs smtp", env: with(map[string]string{"RESUMER_ROLES": "notify", "RESUMER_PERSONA_API_KEY": "k"}), wantErr: "RESUMER_SMTP_URL"},
		{name: "bad value names the variable", env: with(map[string]string{"RESUMER_BATCH_SIZE": "many"}), wantErr: "RESUMER_BATCH_SIZE: invalid value"},
		{name: "plain and _FILE both set", env: with(map[string]string{"RESUMER_WEBHOOK_SECRETS_FILE": secretFile}), wantErr: "RESUMER_WEBHOOK_SECRETS and RESUMER_WEBHOOK_SECRETS_FILE are both set"},
		{name: "secret from file alone", env: with(map[string]string{"RESUMER_WEBHOOK_SECRETS": "", "RESUMER_WEBHOOK_SECRETS_FILE": secretFile})},
		{name: "flag wins and is shown", env: good, args: []string{"--batch-size", "7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"config", "check"}, tt.args...), env(tt.env), nil, &out, io.Discard)
			text := out.String()
			if err != nil {
				text += "\n" + err.Error()
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v\n%s", err, text)
				}
				if !strings.Contains(text, "configuration OK") {
					t.Errorf("no OK line:\n%s", text)
				}
			} else {
				if err == nil {
					t.Fatalf("want an error with %q, got success:\n%s", tt.wantErr, text)
				}
				if !strings.Contains(text, tt.wantErr) {
					t.Errorf("want %q in:\n%s", tt.wantErr, text)
				}
			}
			for _, secret := range []string{"wbhsec_very_secret_value", "hunter2", "wbhsec_from_file"} {
				if strings.Contains(text, secret) {
					t.Errorf("config check printed the secret %q", secret)
				}
			}
		})
	}
	var out bytes.Buffer
	run(context.Background(), []string{"config", "check", "--batch-size", "7"}, env(good), nil, &out, io.Discard)
	if !regexp.MustCompile(`RESUMER_BATCH_SIZE\s+flag\s+7\n`).MatchString(out.String()) ||
		!regexp.MustCompile(`RESUMER_REDIS_URL\s+env\s+redis://user:xxxxx@127.0.0.1:6379/0\n`).MatchString(out.String()) {
		t.Errorf("sources or masking wrong:\n%s", out.String())
	}
}
