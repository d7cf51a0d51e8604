package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/resumer/resumer/state"
)

// inquiryCommand implements `resumer inquiry show|expiring`: read-only views of the state in
// Redis for an operator.
func inquiryCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, err := subcommand("inquiry", args, stdout, "show", "expiring")
	if err != nil {
		return err
	}
	var asJSON, reveal bool
	var within time.Duration
	var limit int
	cfg, pos, err := loadConfig("inquiry "+sub, args[1:], getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
		fs.BoolVar(&reveal, "reveal", false, "show the e-mail address unmasked (show only)")
		fs.DurationVar(&within, "within", 2*time.Hour, "expiring within this long (expiring only)")
		fs.IntVar(&limit, "limit", 100, "at most this many inquiries (expiring only)")
	})
	if err != nil {
		return err
	}
	store, closeStore, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer closeStore()

	if sub == "show" {
		if len(pos) != 1 {
			return errors.New("inquiry show: want exactly one inquiry id")
		}
		inq, err := store.Inquiry(ctx, pos[0])
		if err != nil {
			return fmt.Errorf("inquiry show: %w", err)
		}
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(inquiryJSON(inq, reveal))
		}
		printInquiry(stdout, inq, reveal)
		return nil
	}
	if len(pos) != 0 {
		return fmt.Errorf("inquiry expiring: unexpected arguments %q", pos)
	}
	list, err := store.Expiring(ctx, within, limit)
	if err != nil {
		return fmt.Errorf("inquiry expiring: %w", err)
	}
	if asJSON {
		out := make([]map[string]any, 0, len(list))
		for _, inq := range list {
			out = append(out, inquiryJSON(inq, false))
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INQUIRY\tSTATUS\tEXPIRES AT\tLEFT\tREFERENCE")
	for _, inq := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", inq.ID, inq.Status, inq.ExpiresAt.UTC().Format(time.RFC3339),
			time.Until(inq.ExpiresAt).Round(time.Second), inq.ReferenceID)
	}
	return tw.Flush()
}

func openStore(cfg *config) (*state.Store, func(), error) {
	rdb, err := openRedis(cfg)
	if err != nil {
		return nil, nil, err
	}
	store, err := state.New(rdb, stateConfig(cfg, nil))
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return store, func() { rdb.Close() }, nil
}

// inquiryJSON is the stable JSON shape of `inquiry show --json`.
func inquiryJSON(inq *state.Inquiry, reveal bool) map[string]any {
	sent := inq.RemindersSent
	if sent == nil {
		sent = []string{}
	}
	m := map[string]any{
		"inquiry_id":     inq.ID,
		"status":         string(inq.Status),
		"expires_at":     timeOrNil(inq.ExpiresAt),
		"reference_id":   inq.ReferenceID,
		"template_id":    inq.TemplateID,
		"updated_at":     timeOrNil(inq.UpdatedAt),
		"last_event_id":  inq.LastEventID,
		"reminders_sent": sent,
	}
	if reveal {
		m["email_address"] = inq.EmailAddress
		m["name_first"] = inq.NameFirst
	}
	return m
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func printInquiry(w io.Writer, inq *state.Inquiry, reveal bool) {
	email := maskEmail(inq.EmailAddress)
	if reveal {
		email = inq.EmailAddress
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("inquiry", inq.ID)
	row("status", inq.Status)
	row("expires at", fmtExpiry(inq.ExpiresAt, time.Now()))
	row("reference", inq.ReferenceID)
	row("template", inq.TemplateID)
	row("account", inq.AccountID)
	row("created at", fmtTime(inq.CreatedAt))
	row("started at", fmtTime(inq.StartedAt))
	row("completed at", fmtTime(inq.CompletedAt))
	row("expired at", fmtTime(inq.ExpiredAt))
	row("status since", fmtTime(inq.StatusAt))
	row("last event", strings.TrimSpace(inq.LastEventName+" "+inq.LastEventID))
	row("updated at", fmtTime(inq.UpdatedAt))
	row("e-mail", email)
	row("reminders sent", strings.Join(inq.RemindersSent, ","))
	tw.Flush()
}

// fmtExpiry shows an expiry with how far away it is, and says so plainly when it has passed.
func fmtExpiry(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	left := t.Sub(now).Round(time.Second)
	if left <= 0 {
		return fmt.Sprintf("%s (in the past: %s ago)", fmtTime(t), -left)
	}
	return fmt.Sprintf("%s (in %s)", fmtTime(t), left)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// maskEmail turns "jane.doe@example.com" into "j***@e***.com".
func maskEmail(e string) string {
	if e == "" {
		return "-"
	}
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" {
		return "***"
	}
	masked := local[:1] + "***@"
	if dot := strings.LastIndexByte(domain, '.'); dot > 0 {
		return masked + domain[:1] + "***" + domain[dot:]
	}
	return masked + "***"
}
