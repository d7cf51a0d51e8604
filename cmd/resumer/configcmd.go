package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"
)

// configCommand implements `resumer config` (the README's Markdown table of every variable)
// and `resumer config check` (validate and print the effective configuration).
func configCommand(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "table" {
		fmt.Fprint(stdout, settingsMarkdown())
		return nil
	}
	if _, err := subcommand("config", args, stdout, "check", "table"); err != nil {
		return err
	}
	cfg, rest, err := loadConfig("config check", args[1:], getenv, stderr)
	if err != nil {
		return fmt.Errorf("config check: %w", err)
	}
	if len(rest) > 0 {
		return fmt.Errorf("config check: unexpected arguments %q", rest)
	}
	printEffectiveConfig(stdout, cfg)
	problems := cfg.check()
	if len(problems) == 0 {
		fmt.Fprintf(stdout, "\nconfiguration OK for roles %s\n", strings.Join(cfg.Roles, ","))
		return nil
	}
	fmt.Fprintf(stdout, "\n%d problem(s):\n", len(problems))
	for _, p := range problems {
		fmt.Fprintf(stdout, "  - %v\n", p)
	}
	return fmt.Errorf("config check: %d problem(s)", len(problems))
}

// printEffectiveConfig prints every setting's value and where it came from. Secrets are
// masked: a URL keeps everything but its password, anything else shows only whether it is set.
func printEffectiveConfig(w io.Writer, cfg *config) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tSOURCE\tVALUE")
	for _, s := range settings {
		v := cfg.values[s.env]
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.env, v.source, displayValue(s, v.raw))
	}
	tw.Flush()
}

// displayValue is how `config check` shows a setting's value.
func displayValue(s setting, raw string) string {
	if raw == "" {
		return "(empty)"
	}
	if !s.secret {
		return raw
	}
	var shown []string
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if u, err := url.Parse(part); err == nil && u.Scheme != "" && u.Host != "" {
			if u.User != nil {
				if _, hasPass := u.User.Password(); hasPass {
					u.User = url.UserPassword(u.User.Username(), "xxxxx")
				}
			}
			shown = append(shown, u.String())
			continue
		}
		shown = append(shown, fmt.Sprintf("(set, %d bytes)", len(part)))
	}
	return strings.Join(shown, ",")
}

// check returns every problem with the configuration that start-up of its roles would hit,
// plus the cross-checks between settings. It builds each configured role's components without
// starting them (nothing is contacted).
func (c *config) check() []error {
	var problems []error
	if c.Retention < c.EventMemory {
		problems = append(problems, fmt.Errorf("RESUMER_RETENTION (%s) is shorter than RESUMER_EVENT_MEMORY (%s): a final record would be purged while its event ids should still dedupe redeliveries", c.Retention, c.EventMemory))
	}
	if len(c.RemindBefore) > 0 {
		smallest := slices.Min(c.RemindBefore)
		if c.MinRemaining >= smallest {
			problems = append(problems, fmt.Errorf("RESUMER_MIN_REMAINING (%s) is not below the smallest stage of RESUMER_REMIND_BEFORE (%s): that stage could never be sent late", c.MinRemaining, smallest))
		}
	}
	// A claim must outlive the work done under it: one sweep interval to be picked up, the
	// Persona call (bounded like the API's) and the settle.
	if need := c.NotifyInterval + 2*c.ResumeTimeout; c.has("notify") && c.NotifyLease < need {
		problems = append(problems, fmt.Errorf("RESUMER_NOTIFY_LEASE (%s) is shorter than RESUMER_NOTIFY_INTERVAL + 2 × RESUMER_RESUME_TIMEOUT (%s): claimed reminders could be taken over while still being sent", c.NotifyLease, need))
	}
	if c.StreamMaxAge < c.DedupWindow {
		problems = append(problems, fmt.Errorf("RESUMER_STREAM_MAX_AGE (%s) is shorter than RESUMER_DEDUP_WINDOW (%s)", c.StreamMaxAge, c.DedupWindow))
	}
	if c.has("webhook") && len(c.WebhookSecrets) == 0 {
		problems = append(problems, errors.New("RESUMER_WEBHOOK_SECRETS: required by the webhook role (set it or RESUMER_WEBHOOK_SECRETS_FILE)"))
	}
	if c.has("notify") || c.has("api") {
		// The roles' constructors hold the remaining rules; a client that is never used does
		// not connect.
		rdb, err := openRedis(c)
		if err != nil {
			problems = append(problems, err)
			return problems
		}
		defer rdb.Close()
		logger := slog.New(slog.DiscardHandler)
		if c.has("notify") {
			if _, err := newScheduler(c, rdb, logger, prometheus.NewRegistry()); err != nil {
				problems = append(problems, fmt.Errorf("notify role: %w", err))
			}
		}
		if c.has("api") {
			if _, err := newAPIServer(c, rdb, logger, prometheus.NewRegistry()); err != nil {
				problems = append(problems, fmt.Errorf("api role: %w", err))
			}
		}
	}
	return problems
}

// settingValue is a setting's raw value and where it came from.
type settingValue struct {
	raw    string
	source string // flag, env, file or default
}
