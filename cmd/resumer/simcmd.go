package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/resumer/resumer/persona/personatest"
)

// personaSimCommand implements `resumer persona-sim`: the in-memory Persona simulator on its
// own, for trying resumer (or anything else that talks to Persona) by hand.
func personaSimCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("persona-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, synopsis("persona-sim"))
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	apiKey := fs.String("api-key", personatest.DefaultAPIKey, "the API key the simulator accepts")
	hooks := fs.String("webhook-url", "", "comma-separated URLs that receive signed webhook events")
	secret := fs.String("webhook-secret", "", "secret that signs webhook events (required with --webhook-url)")
	rate := fs.Int("rate-limit", 300, "API requests per minute before 429")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("persona-sim: --log-level: %w", err)
	}
	opts := personatest.Options{
		APIKey:    *apiKey,
		RateLimit: *rate,
		Logger:    slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	if *hooks != "" {
		if *secret == "" {
			return fmt.Errorf("persona-sim: --webhook-secret is required with --webhook-url")
		}
		opts.WebhookURLs = strings.Split(*hooks, ",")
		opts.WebhookSecret = *secret
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("persona-sim: listen: %w", err)
	}
	sim := personatest.New(opts)
	defer sim.Close()
	fmt.Fprintf(stdout, "resumer: persona-sim listening on http://%s (API key %s; control API: GET /_sim/)\n", ln.Addr(), opts.APIKey)
	return sim.Serve(ctx, ln)
}
