package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/reconcile"
	"github.com/resumer/resumer/state"
)

// newReconciler builds the reconcile role: a Persona client of its own, paced by the
// reconciliation budget within the limiter every replica shares, publishing into the events
// stream (js may be nil for dry runs).
func newReconciler(cfg *config, rdb redis.UniversalClient, js jetstream.JetStream, logger *slog.Logger, reg prometheus.Registerer) (*reconcile.Reconciler, error) {
	if cfg.PersonaAPIKey == "" {
		return nil, errors.New("RESUMER_PERSONA_API_KEY: required by reconciliation (or RESUMER_PERSONA_API_KEY_FILE)")
	}
	store, err := state.New(rdb, stateConfig(cfg, reg))
	if err != nil {
		return nil, err
	}
	shared, err := state.NewRateLimiter(rdb, state.RateLimiterOptions{
		Prefix: cfg.RedisPrefix, Limit: cfg.PersonaRate, Window: time.Minute, Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("persona rate limiter: %w", err)
	}
	own, err := state.NewRateLimiter(rdb, state.RateLimiterOptions{
		Prefix: cfg.RedisPrefix, Name: "reconcile", Limit: max(int(float64(cfg.PersonaRate)*cfg.ReconcileBudget), 1),
		Window: time.Minute, Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("reconciliation rate limiter: %w", err)
	}
	client, err := persona.NewClient(persona.ClientOptions{
		BaseURL:    cfg.PersonaAPIURL,
		APIKey:     cfg.PersonaAPIKey,
		Version:    cfg.PersonaVersion,
		Limiter:    &reconcile.BudgetLimiter{Budget: own, Shared: shared, Share: cfg.ReconcileBudget},
		Logger:     logger.With("component", "persona"),
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	opts := reconcile.Options{
		Store:      store,
		Persona:    client,
		Stream:     cfg.Stream,
		Subjects:   cfg.Subjects,
		Interval:   cfg.ReconcileInterval,
		Lookback:   cfg.ReconcileLookback,
		Logger:     logger,
		Registerer: reg,
	}
	if js != nil {
		opts.Publisher = js
	}
	return reconcile.New(opts)
}

// reconcileCommand implements `resumer reconcile [--since 48h] [--dry-run]`: one pass by hand.
func reconcileCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var since time.Duration
	var dryRun bool
	cfg, pos, err := loadConfig("reconcile", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.DurationVar(&since, "since", 0, "replay the events of this long ago instead of continuing from the checkpoint, and re-check from the start")
		fs.BoolVar(&dryRun, "dry-run", false, "read and compare only: publish nothing, move no checkpoint")
	})
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("reconcile: unexpected arguments %q", pos)
	}
	if since < 0 {
		return errors.New("reconcile: --since must not be negative")
	}
	rdb, err := openRedis(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	var js jetstream.JetStream
	if !dryRun {
		nc, err := nats.Connect(cfg.NATSURL, nats.Name("resumer-reconcile"), nats.Timeout(5*time.Second))
		if err != nil {
			return fmt.Errorf("connect to nats: %w", err)
		}
		defer nc.Close()
		if js, err = jetstream.New(nc); err != nil {
			return fmt.Errorf("open jetstream: %w", err)
		}
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := newReconciler(cfg, rdb, js, logger, nil)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	start := time.Now()
	report, err := r.Pass(ctx, reconcile.PassOptions{Since: since, DryRun: dryRun})
	printReport(stdout, report, dryRun, time.Since(start))
	if errors.Is(err, reconcile.ErrBusy) {
		return errors.New("reconcile: another replica is reconciling now; try again later")
	}
	return err
}

// printReport prints what a pass found; ids only, never personal data.
func printReport(w io.Writer, r *reconcile.Report, dryRun bool, took time.Duration) {
	mode := "pass"
	if dryRun {
		mode = "dry run (nothing published)"
	}
	fmt.Fprintf(w, "reconcile %s in %s: %d Persona calls\n", mode, took.Round(time.Millisecond), r.PersonaCalls())
	if !r.EventsFrom.IsZero() {
		fmt.Fprintf(w, "events since %s: %d listed on %d pages, %d published, %d already in the stream, %d unreadable\n",
			r.EventsFrom.UTC().Format(time.RFC3339), r.EventsSeen, r.EventPages, r.EventsPublished, r.EventsDuplicate, r.EventsUnparsed)
	}
	fmt.Fprintf(w, "open inquiries re-checked: %d in %d calls; %d differences, %d unknown to Persona\n",
		r.Checked, r.InquiryPages, len(r.Differences), len(r.Missing))
	if len(r.Differences) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INQUIRY\tKIND\tTRACKED\tPERSONA\tUPDATED AT\tEVENT")
		for _, d := range r.Differences {
			tracked, current := string(d.Tracked), string(d.Current)
			if d.Kind == "expiry" {
				tracked += " until " + d.TrackedExpiresAt.UTC().Format(time.RFC3339)
				current += " until " + d.CurrentExpiresAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.InquiryID, d.Kind, tracked, current,
				d.UpdatedAt.UTC().Format(time.RFC3339), d.EventName)
		}
		tw.Flush()
	}
	for _, id := range r.Missing {
		fmt.Fprintf(w, "not found at Persona: %s\n", id)
	}
}

// parseShare reads a share of a whole: "20%" or "0.2", in (0, 1].
func parseShare(v string) (float64, error) {
	s := strings.TrimSpace(v)
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("want a share such as 20%% or 0.2, got %q", v)
	}
	if pct {
		f /= 100
	}
	if f <= 0 || f > 1 {
		return 0, fmt.Errorf("want a share above 0 and at most 100%%, got %q", v)
	}
	return f, nil
}
