package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/eventstream"
)

// TestREADMEListsEverySetting fails when the README's configuration table and the settings
// in code disagree. Regenerate the table with `go run ./cmd/resumer config`.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- config:begin -->\n", "<!-- config:end -->"
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", strings.TrimSpace(begin), end)
	}
	if got, want := s[i+len(begin):j], settingsMarkdown(); got != want {
		t.Errorf("README.md configuration table is out of date; replace it with the output of `go run ./cmd/resumer config`:\n%s", want)
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfig(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("wbhsec_from_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	brandsFile := filepath.Join(t.TempDir(), "brands.yaml")
	if err := os.WriteFile(brandsFile, []byte("brands:\n  - id: acme\n    name: Acme\n    color: pink\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string // substring; "" means success
		check   func(t *testing.T, c *config)
	}{
		{name: "defaults", check: func(t *testing.T, c *config) {
			if c.HTTPAddr != ":8080" || c.AdminAddr != ":9464" || c.Stream != "PERSONA_EVENTS" || c.RedisPrefix != "resumer" {
				t.Errorf("defaults: %+v", c)
			}
			if c.WebhookTolerance != 5*time.Minute || c.DedupWindow != time.Hour || c.StreamMaxAge != 7*24*time.Hour {
				t.Errorf("duration defaults: %v %v %v", c.WebhookTolerance, c.DedupWindow, c.StreamMaxAge)
			}
			if c.explicit["RESUMER_NATS_URL"] {
				t.Error("NATS URL marked explicit without being set")
			}
		}},
		{name: "env", env: map[string]string{"RESUMER_WEBHOOK_SECRETS": "a, b ,", "RESUMER_ROLES": "worker"}, check: func(t *testing.T, c *config) {
			if len(c.WebhookSecrets) != 2 || string(c.WebhookSecrets[1]) != "b" {
				t.Errorf("secrets: %q", c.WebhookSecrets)
			}
			if len(c.Roles) != 1 || c.Roles[0] != "worker" {
				t.Errorf("roles: %v", c.Roles)
			}
		}},
		{name: "flag beats env", args: []string{"--http-addr", "127.0.0.1:0"}, env: map[string]string{"RESUMER_HTTP_ADDR": ":1"},
			check: func(t *testing.T, c *config) {
				if c.HTTPAddr != "127.0.0.1:0" {
					t.Errorf("http addr %q", c.HTTPAddr)
				}
			}},
		{name: "secret from file", env: map[string]string{"RESUMER_WEBHOOK_SECRETS_FILE": secretFile}, check: func(t *testing.T, c *config) {
			if len(c.WebhookSecrets) != 1 || string(c.WebhookSecrets[0]) != "wbhsec_from_file" {
				t.Errorf("secrets: %q", c.WebhookSecrets)
			}
		}},
		{name: "template intervals with days", env: map[string]string{"RESUMER_EXPIRY_BY_TEMPLATE": "itmpl_a=48h, itmpl_b=7d"}, check: func(t *testing.T, c *config) {
			if c.ExpiryByTemplate["itmpl_a"] != 48*time.Hour || c.ExpiryByTemplate["itmpl_b"] != 7*24*time.Hour {
				t.Errorf("intervals: %v", c.ExpiryByTemplate)
			}
		}},
		{name: "subject prefix and dev sync", env: map[string]string{"RESUMER_SUBJECT_PREFIX": "staging.persona.events", "RESUMER_DEV_NATS_SYNC": "1s"},
			check: func(t *testing.T, c *config) {
				if got := c.Subjects.Event("inquiry.started"); got != "staging.persona.events.inquiry.started" {
					t.Errorf("subject %q", got)
				}
				if c.DevNATSSync != (eventstream.Sync{Interval: time.Second}) {
					t.Errorf("dev nats sync %v", c.DevNATSSync)
				}
			}},
		{name: "default subject prefix and dev sync", check: func(t *testing.T, c *config) {
			if got := c.Subjects.Filter(); got != "persona.events.>" {
				t.Errorf("subjects %q", got)
			}
			if !c.DevNATSSync.Always {
				t.Errorf("dev nats sync %v, want always", c.DevNATSSync)
			}
		}},
		{name: "subject prefix with a wildcard", env: map[string]string{"RESUMER_SUBJECT_PREFIX": "persona.*"}, wantErr: "RESUMER_SUBJECT_PREFIX"},
		{name: "subject prefix with a trailing dot", env: map[string]string{"RESUMER_SUBJECT_PREFIX": "persona.events."}, wantErr: "RESUMER_SUBJECT_PREFIX"},
		{name: "empty subject prefix", args: []string{"--subject-prefix="}, wantErr: "RESUMER_SUBJECT_PREFIX"},
		{name: "bad dev sync", env: map[string]string{"RESUMER_DEV_NATS_SYNC": "sometimes"}, wantErr: "RESUMER_DEV_NATS_SYNC"},
		{name: "missing secret file", env: map[string]string{"RESUMER_WEBHOOK_SECRETS_FILE": "/nonexistent/x"}, wantErr: "RESUMER_WEBHOOK_SECRETS_FILE"},
		{name: "bad duration", env: map[string]string{"RESUMER_WEBHOOK_TOLERANCE": "soon"}, wantErr: "RESUMER_WEBHOOK_TOLERANCE"},
		{name: "duration too small", env: map[string]string{"RESUMER_DEDUP_WINDOW": "1ms"}, wantErr: "RESUMER_DEDUP_WINDOW"},
		{name: "unknown role", env: map[string]string{"RESUMER_ROLES": "webhook,mailer"}, wantErr: "RESUMER_ROLES"},
		{name: "bad int", env: map[string]string{"RESUMER_STREAM_REPLICAS": "three"}, wantErr: "RESUMER_STREAM_REPLICAS"},
		{name: "bad redis url", env: map[string]string{"RESUMER_REDIS_URL": "http://x"}, wantErr: "RESUMER_REDIS_URL"},
		{name: "sentinel url without master", env: map[string]string{"RESUMER_REDIS_URL": "redis+sentinel://s1:26379,s2:26379"}, wantErr: "RESUMER_REDIS_URL"},
		{name: "cluster url with a database", env: map[string]string{"RESUMER_REDIS_URL": "redis+cluster://h1:6379/2"}, wantErr: "RESUMER_REDIS_URL"},
		{name: "redis url with an unknown option", env: map[string]string{"RESUMER_REDIS_URL": "redis://h:6379?addr=h2:6379&bogus=1"}, wantErr: "RESUMER_REDIS_URL"},
		{name: "cluster url", env: map[string]string{"RESUMER_REDIS_URL": "redis://:pw@h1:6379?addr=h2:6379&addr=h3:6379"}, check: func(t *testing.T, c *config) {
			if c.RedisURL != "redis://:pw@h1:6379?addr=h2:6379&addr=h3:6379" {
				t.Errorf("RedisURL = %q", c.RedisURL)
			}
		}},
		{name: "sentinel url", env: map[string]string{"RESUMER_REDIS_URL": "rediss+sentinel://:pw@s1:26379,s2:26379,s3:26379/mymaster/0?sentinel_password=spw"}, check: func(t *testing.T, c *config) {
			if !strings.HasPrefix(c.RedisURL, "rediss+sentinel://") {
				t.Errorf("RedisURL = %q", c.RedisURL)
			}
		}},
		{name: "bad stream name", env: map[string]string{"RESUMER_STREAM": "a.b"}, wantErr: "RESUMER_STREAM"},
		{name: "bad template interval", env: map[string]string{"RESUMER_EXPIRY_BY_TEMPLATE": "itmpl_a"}, wantErr: "RESUMER_EXPIRY_BY_TEMPLATE"},
		{name: "bad log level", env: map[string]string{"RESUMER_LOG_LEVEL": "loud"}, wantErr: "RESUMER_LOG_LEVEL"},
		{name: "bad max body", args: []string{"--webhook-max-body=1"}, wantErr: "RESUMER_WEBHOOK_MAX_BODY"},
		{name: "bad brands file", env: map[string]string{"RESUMER_BRANDS_FILE": brandsFile}, wantErr: "RESUMER_BRANDS_FILE"},
		{name: "brands file line", env: map[string]string{"RESUMER_BRANDS_FILE": brandsFile}, wantErr: `line 4: brand 1 (acme): color "pink"`},
		{name: "single use", env: map[string]string{"RESUMER_LINK_SINGLE_USE": "true"}, check: func(t *testing.T, c *config) {
			if !c.LinkSingleUse {
				t.Error("RESUMER_LINK_SINGLE_USE=true not read")
			}
		}},
		{name: "locale field", env: map[string]string{"RESUMER_LOCALE_FIELD": "address-country-code"}, check: func(t *testing.T, c *config) {
			if c.LocaleField != "address-country-code" {
				t.Errorf("LocaleField %q", c.LocaleField)
			}
		}},
		{name: "bad locale field", env: map[string]string{"RESUMER_LOCALE_FIELD": "fields.locale"}, wantErr: "RESUMER_LOCALE_FIELD"},
		{name: "bad single use", env: map[string]string{"RESUMER_LINK_SINGLE_USE": "once"}, wantErr: "RESUMER_LINK_SINGLE_USE"},
		{name: "bad address", env: map[string]string{"RESUMER_ADMIN_ADDR": "9464"}, wantErr: "RESUMER_ADMIN_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := loadConfig("test", tt.args, env(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadConfigInterleavedArgs(t *testing.T) {
	_, pos, err := loadConfig("x", []string{"inq_1", "--redis-prefix", "p", "inq_2"}, env(nil), io.Discard)
	if err != nil || len(pos) != 2 || pos[0] != "inq_1" || pos[1] != "inq_2" {
		t.Fatalf("pos=%v err=%v", pos, err)
	}
}

func TestMaskEmail(t *testing.T) {
	for in, want := range map[string]string{
		"jane.doe@example.com": "j***@e***.com",
		"":                     "-",
		"broken":               "***",
		"a@localhost":          "a***@***",
	} {
		if got := maskEmail(in); got != want {
			t.Errorf("maskEmail(%q) = %q, want %q", in, got, want)
		}
	}
}
