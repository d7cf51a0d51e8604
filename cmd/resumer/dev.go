package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/mailcatch"
	"github.com/resumer/resumer/persona/personatest"
)

// devSecret is the webhook secret `resumer dev` uses when none is configured. It is printed at
// start-up; it is for a laptop, never for a deployment.
const devSecret = "wbhsec_dev_only_not_secret"

// devCommand is `serve` with embedded defaults for a newcomer: every role; an embedded NATS
// server with JetStream (data under ./.resumer, or RESUMER_DEV_DATA_DIR) unless
// RESUMER_NATS_URL is set; Redis from RESUMER_REDIS_URL (default the local one); a
// development webhook secret; and the Persona simulator, delivering its webhooks to the
// receiver, unless RESUMER_PERSONA_API_URL is set.
func devCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var demo bool
	cfg, rest, err := loadConfig("dev", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&demo, "demo", false, "play a short scripted scenario against the Persona simulator")
	})
	if err != nil {
		return err
	}
	if demo {
		if cfg.explicit["RESUMER_PERSONA_API_URL"] {
			return fmt.Errorf("dev --demo: needs the simulator; unset RESUMER_PERSONA_API_URL")
		}
		// With the simulator's 24 h expiry, a stage 30 s shorter falls due 30 s after an
		// inquiry is created: the stalled users are reminded within a minute, while those
		// who finish at once get nothing.
		if !cfg.explicit["RESUMER_REMIND_BEFORE"] {
			cfg.RemindBefore = []time.Duration{24*time.Hour - 30*time.Second}
		}
		if !cfg.explicit["RESUMER_NOTIFY_INTERVAL"] {
			cfg.NotifyInterval = 2 * time.Second
		}
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
	// dev shows live session-token links on its admin listener (/dev/mail): loopback only,
	// unless an address is given.
	if !cfg.explicit["RESUMER_HTTP_ADDR"] {
		cfg.HTTPAddr = "127.0.0.1:8080"
	}
	if !cfg.explicit["RESUMER_ADMIN_ADDR"] {
		cfg.AdminAddr = "127.0.0.1:9464"
	}
	dir := getenv("RESUMER_DEV_DATA_DIR")
	if dir == "" {
		dir = ".resumer"
	}
	stopRedis, redisNote, err := ensureDevRedis(ctx, cfg, filepath.Join(dir, "redis"), logger)
	if err != nil {
		return err
	}
	defer stopRedis()
	if !cfg.explicit["RESUMER_NATS_URL"] {
		ns, err := eventstream.StartEmbedded("resumer-dev", filepath.Join(dir, "nats"), cfg.DevNATSSync)
		if err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
		cfg.NATSURL = ns.ClientURL()
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http on %s: %w", cfg.HTTPAddr, err)
	}
	cfg.httpListener = ln
	receiverURL := "http://" + loopback(ln.Addr()) + "/webhooks/persona"

	simURL := "(not started: RESUMER_PERSONA_API_URL is set)"
	var sim *personatest.Server
	if !cfg.explicit["RESUMER_PERSONA_API_URL"] {
		var url string
		sim, url, err = startSimulator(ctx, cfg, receiverURL, logger)
		if err != nil {
			ln.Close()
			return err
		}
		defer sim.Close()
		simURL = url + " (control API: " + url + "/_sim/)"
		// Reminder links open the simulator's stand-in for the hosted flow: a simulator's
		// session token means nothing to the real Persona.
		if !cfg.explicit["RESUMER_HOSTED_FLOW_URL"] {
			cfg.HostedFlowURL = url + "/verify"
		}
	}

	mailURL := "(not started: RESUMER_SMTP_URL is set)"
	if cfg.SMTPURL == "" {
		catcher, err := startMailCatcher(ctx, logger)
		if err != nil {
			ln.Close()
			return err
		}
		defer catcher.Close()
		cfg.SMTPURL = catcher.URL()
		cfg.devHandlers = map[string]http.Handler{"GET /dev/mail": catcher.Handler()}
		mailURL = catcher.URL() + " (caught mail: http://" + loopbackAddr(cfg.AdminAddr) + "/dev/mail)"
	}
	if cfg.MailFrom == "" {
		cfg.MailFrom = "resumer dev <resumer@localhost>"
	}

	fmt.Fprintf(stdout, "resumer dev: NATS %s (stream %s), Redis %s%s (prefix %s)\n", redactURL(cfg.NATSURL), cfg.Stream, redactURL(cfg.RedisURL), redisNote, cfg.RedisPrefix)
	fmt.Fprintf(stdout, "resumer dev: Persona simulator %s\n", simURL)
	fmt.Fprintf(stdout, "resumer dev: mail catcher %s\n", mailURL)
	fmt.Fprintf(stdout, "resumer dev: webhook secret %q; try:\n  go run ./cmd/resumer webhook send --url %s --secret %s < testdata/inquiry.started.json\n",
		string(cfg.WebhookSecrets[0]), receiverURL, string(cfg.WebhookSecrets[0]))
	if demo {
		go runDemo(ctx, sim, "http://"+loopbackAddr(cfg.AdminAddr)+"/dev/mail", stdout)
	}
	return serve(ctx, cfg, logger, stdout)
}

// ensureDevRedis makes sure a Redis answers at cfg.RedisURL. When nothing answers at the
// default URL it starts a private redis-server with its data in dir and points cfg at it; the
// returned stop function stops it. An explicitly configured URL that does not answer, or no
// redis-server to start, is an error that says what to do.
func ensureDevRedis(ctx context.Context, cfg *config, dir string, logger *slog.Logger) (stop func(), note string, err error) {
	err = pingRedis(ctx, cfg.RedisURL, cfg.RedisTLS)
	if err == nil {
		return func() {}, "", nil
	}
	if cfg.explicit["RESUMER_REDIS_URL"] {
		return nil, "", fmt.Errorf("dev: RESUMER_REDIS_URL %s does not answer: %w", redactURL(cfg.RedisURL), err)
	}
	logger.Info("no Redis answers at the default URL; starting a private redis-server",
		"url", redactURL(cfg.RedisURL), "err", err.Error())
	r, err := startDevRedis(ctx, dir, io.Discard)
	if err != nil {
		return nil, "", fmt.Errorf("dev: %w", err)
	}
	cfg.RedisURL = r.url
	return r.Stop, " (private redis-server, data in " + dir + ")", nil
}

// startSimulator runs the Persona simulator on a free loopback port, delivering signed
// webhooks to receiverURL, and points the configuration's Persona client at it.
func startSimulator(ctx context.Context, cfg *config, receiverURL string, logger *slog.Logger) (*personatest.Server, string, error) {
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("listen persona simulator: %w", err)
	}
	sim := personatest.New(personatest.Options{
		WebhookURLs:   []string{receiverURL},
		WebhookSecret: string(cfg.WebhookSecrets[0]),
		Logger:        logger.With("component", "persona-sim"),
	})
	go func() {
		if err := sim.Serve(ctx, simLn); err != nil {
			logger.Error("persona simulator stopped", "err", err)
		}
	}()
	url := "http://" + simLn.Addr().String()
	cfg.PersonaAPIURL = url
	cfg.PersonaAPIKey = sim.APIKey()
	return sim, url, nil
}

// startMailCatcher runs an in-process SMTP server on a free loopback port that keeps every
// reminder and logs a line for each (subject and Message-ID; the page shows the rest).
func startMailCatcher(ctx context.Context, logger *slog.Logger) (*mailcatch.Catcher, error) {
	log := logger.With("component", "mailcatch")
	catcher, err := mailcatch.New(mailcatch.Options{
		Logger: logger,
		OnMessage: func(m mailcatch.Message) {
			log.Info("caught reminder e-mail", "subject", m.Subject, "message_id", m.MessageID)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("start mail catcher: %w", err)
	}
	l, err := catcher.Listen("127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start mail catcher: %w", err)
	}
	go func() {
		if err := catcher.Serve(l); err != nil && ctx.Err() == nil {
			log.Error("mail catcher stopped", "err", err)
		}
	}()
	return catcher, nil
}

// loopbackAddr turns ":9464" or "0.0.0.0:9464" into "127.0.0.1:9464" for printing.
func loopbackAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || (host != "" && host != "0.0.0.0" && host != "::") {
		return addr
	}
	return "127.0.0.1:" + port
}

// loopback returns addr with an unspecified host ("[::]:8080") replaced by 127.0.0.1.
func loopback(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	return fmt.Sprintf("127.0.0.1:%d", tcp.Port)
}
