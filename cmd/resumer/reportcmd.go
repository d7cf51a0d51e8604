package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/resumer/resumer/report"
)

// reportCommand implements `resumer report`: the recovery funnel and the measured uplift of a
// period, read from the daily funnel counts in Redis.
func reportCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var since, by string
	var asJSON bool
	cfg, pos, err := loadConfig("report", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&since, "since", "7d", "period: back from now (7d, 36h) or from a day (2026-01-02)")
		fs.StringVar(&by, "by", report.ByStage, "break down by stage, channel, link-mode or brand")
		fs.BoolVar(&asJSON, "json", false, "print JSON (the shape of GET /v1/report)")
	})
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("report: unexpected arguments %q", pos)
	}
	now := time.Now()
	from, to, err := report.ParsePeriod(since, now)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	store, closeStore, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	r, err := report.Build(ctx, store, report.Options{From: from, To: to, By: by}, now)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if asJSON {
		return r.WriteJSON(stdout)
	}
	return r.WriteText(stdout)
}
