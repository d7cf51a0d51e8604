package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// devSecret is the webhook secret `resumer dev` uses when none is configured. It is printed at
// start-up; it is for a laptop, never for a deployment.
const devSecret = "wbhsec_dev_only_not_secret"

// devCommand is `serve` with embedded defaults for a newcomer: an embedded NATS server with
// JetStream (data under ./.resumer unless --data-dir) when RESUMER_NATS_URL is not set, Redis
// from RESUMER_REDIS_URL (default the local one), and a development webhook secret.
func devCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, rest, err := loadConfig("dev", args, getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("dev: unexpected arguments %q", rest)
	}
	logger := newLogger(cfg, stderr)
	if !cfg.explicit["RESUMER_ROLES"] {
		cfg.Roles = allRoles
	}
	if len(cfg.WebhookSecrets) == 0 {
		cfg.WebhookSecrets = [][]byte{[]byte(devSecret)}
	}
	if !cfg.explicit["RESUMER_NATS_URL"] {
		dir := getenv("RESUMER_DEV_DATA_DIR")
		if dir == "" {
			dir = ".resumer"
		}
		ns, err := startEmbeddedNATS(filepath.Join(dir, "nats"))
		if err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
		cfg.NATSURL = ns.ClientURL()
	}
	fmt.Fprintf(stdout, "resumer dev: NATS %s (stream %s), Redis %s (prefix %s)\n", cfg.NATSURL, cfg.Stream, redactURL(cfg.RedisURL), cfg.RedisPrefix)
	fmt.Fprintf(stdout, "resumer dev: webhook secret %q; try:\n  go run ./cmd/resumer webhook send --url http://127.0.0.1%s/webhooks/persona --secret %s < testdata/inquiry.started.json\n",
		string(cfg.WebhookSecrets[0]), portOf(cfg.HTTPAddr), string(cfg.WebhookSecrets[0]))
	return serve(ctx, cfg, logger, stdout)
}

// startEmbeddedNATS runs an in-process NATS server with JetStream on a free loopback port,
// storing under dir.
func startEmbeddedNATS(dir string) (*server.Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create nats data dir: %w", err)
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "resumer-dev",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("start embedded nats: not ready after 10s")
	}
	return ns, nil
}
