package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/resumer/resumer/internal/eventstream"
	"github.com/resumer/resumer/internal/redisconn"
	"github.com/resumer/resumer/report"
	"github.com/resumer/resumer/state"
	"github.com/resumer/resumer/webhook"
	"github.com/resumer/resumer/worker"
)

func serveCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, rest, err := loadConfig("serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("serve: unexpected arguments %q", rest)
	}
	return serve(ctx, cfg, newLogger(cfg, stderr), stdout)
}

// newLogger is the JSON logger every command and role logs through. Durations are written
// as Go duration strings ("1.5s") everywhere, not as slog's default integer nanoseconds, and
// go-redis's own log lines go through it too instead of mixing plain text into the stream.
func newLogger(cfg *config, w io.Writer) *slog.Logger {
	logger := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: cfg.LogLevel,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		},
	}))
	redis.SetLogger(redisLogger{logger.With("component", "go-redis")})
	return logger
}

// redisLogger adapts slog to go-redis's logger interface (redis.SetLogger).
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (c *config) has(role string) bool { return slices.Contains(c.Roles, role) }

// serve runs the configured roles until ctx is cancelled, then drains them within
// cfg.ShutdownTimeout. It prints one "listening" line per listener to stdout.
func serve(ctx context.Context, cfg *config, logger *slog.Logger, stdout io.Writer) error {
	if cfg.has("webhook") && len(cfg.WebhookSecrets) == 0 {
		return errors.New("RESUMER_WEBHOOK_SECRETS: required by the webhook role (set it or RESUMER_WEBHOOK_SECRETS_FILE)")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "resumer_build_info", Help: "Always 1; the version label is the running build.",
	}, []string{"version"})
	buildInfo.WithLabelValues(version).Set(1)
	reg.MustRegister(buildInfo)

	checks := readiness{roles: cfg.Roles}
	var g errgroup.Group
	var nc *nats.Conn
	var link *natsLink
	var js jetstream.JetStream
	if cfg.has("webhook") || cfg.has("worker") || cfg.has("reconcile") {
		var err error
		link, err = connectNATS(cfg.NATSURL, logger)
		if err != nil {
			return err
		}
		nc = link.nc
		defer nc.Close()
		// The receiver publishes asynchronously and waits for each PubAck future at most
		// RESUMER_PUBLISH_TIMEOUT; a future it gave up on is dropped after as long, so it
		// does not count against the pending limit until the next reconnect.
		if js, err = jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout)); err != nil {
			return fmt.Errorf("open jetstream: %w", err)
		}
		checks.add("nats", link.check)
	}
	var rdb redis.UniversalClient
	// plain is a state store without metrics, for the readiness probe and the report page.
	var plain *state.Store
	if cfg.has("worker") || cfg.has("notify") || cfg.has("api") || cfg.has("reconcile") {
		var err error
		if rdb, err = openRedis(cfg); err != nil {
			return err
		}
		defer rdb.Close()
		if plain, err = state.New(rdb, stateConfig(cfg, nil)); err != nil {
			return fmt.Errorf("state store: %w", err)
		}
		// Every primary answers, and (a real write under the prefix) accepts writes: a Redis
		// that answers PING but refuses writes (OOM, READONLY after a failover, LOADING) is
		// not ready.
		checks.add("redis", func(ctx context.Context) error {
			if err := redisconn.Ping(ctx, rdb); err != nil {
				return err
			}
			return plain.Ping(ctx)
		})
	}

	var streamReady atomic.Bool
	streamReadyCh := make(chan struct{})
	if js != nil {
		checks.add("stream", func(context.Context) error {
			if !streamReady.Load() {
				return errors.New("events stream not yet created")
			}
			return nil
		})
	}

	roleCtx, cancelRoles := context.WithCancel(ctx)
	defer cancelRoles()
	var publicMux *http.ServeMux
	if cfg.has("webhook") || cfg.has("api") {
		publicMux = http.NewServeMux()
	}
	if cfg.has("webhook") {
		rcv, err := webhook.New(webhook.Options{
			Secrets:        cfg.WebhookSecrets,
			Tolerance:      cfg.WebhookTolerance,
			MaxBodyBytes:   cfg.WebhookMaxBody,
			PublishTimeout: cfg.PublishTimeout,
			Publisher:      link.publisher(js),
			Stream:         cfg.Stream,
			Subjects:       cfg.Subjects,
			Logger:         logger,
			Registerer:     reg,
		})
		if err != nil {
			return fmt.Errorf("webhook role: %w", err)
		}
		rcv.Register(publicMux)
	}
	if js != nil {
		g.Go(func() error {
			err := ensureStreams(roleCtx, js, link, cfg, logger)
			if err != nil {
				// A permanent failure (the subjects belong to another stream): nothing can
				// work, so stop every role and return the reason.
				cancelRoles()
				return err
			}
			streamReady.Store(true)
			close(streamReadyCh)
			return nil
		})
	}
	if cfg.has("worker") {
		store, err := state.New(rdb, stateConfig(cfg, reg))
		if err != nil {
			return fmt.Errorf("worker role: %w", err)
		}
		w, err := worker.New(worker.Options{
			JetStream:   js,
			Stream:      cfg.Stream,
			Durable:     cfg.Consumer,
			DLQStream:   cfg.DLQStream,
			Subjects:    cfg.Subjects,
			MaxDeliver:  cfg.MaxDeliver,
			BatchSize:   cfg.BatchSize,
			LocaleField: cfg.LocaleField,
			Store:       store,
			Counts:      store,
			Logger:      logger,
			Registerer:  reg,
		})
		if err != nil {
			return fmt.Errorf("worker role: %w", err)
		}
		checks.add("consumer", func(context.Context) error { return w.Ready() })
		g.Go(func() error {
			select {
			case <-streamReadyCh:
			case <-roleCtx.Done():
				return nil
			}
			if err := w.Run(roleCtx); err != nil {
				return fmt.Errorf("worker: %w", err)
			}
			return nil
		})
	}

	if cfg.has("api") {
		srv, err := newAPIServer(cfg, rdb, logger, reg)
		if err != nil {
			return fmt.Errorf("api role: %w", err)
		}
		srv.Register(publicMux)
	}
	if cfg.has("notify") {
		sched, err := newScheduler(cfg, rdb, logger, reg)
		if err != nil {
			return fmt.Errorf("notify role: %w", err)
		}
		g.Go(func() error {
			if err := sched.Run(roleCtx); err != nil {
				return fmt.Errorf("notify: %w", err)
			}
			return nil
		})
		if cfg.WinbackWithin > 0 {
			wb, err := newWinback(cfg, rdb, logger, reg)
			if err != nil {
				return fmt.Errorf("notify role: win-back: %w", err)
			}
			g.Go(func() error { return wb.Run(roleCtx) })
		}
	}

	if cfg.has("reconcile") {
		rec, err := newReconciler(cfg, rdb, js, logger, reg)
		if err != nil {
			return fmt.Errorf("reconcile role: %w", err)
		}
		g.Go(func() error {
			select {
			case <-streamReadyCh:
			case <-roleCtx.Done():
				return nil
			}
			return rec.Run(roleCtx)
		})
	}

	if publicMux != nil {
		if err := startHTTP(roleCtx, &g, "http", cfg.httpListener, cfg.HTTPAddr, publicMux, cfg.ShutdownTimeout, logger, stdout); err != nil {
			return err
		}
	}
	admin := http.NewServeMux()
	admin.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	admin.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	admin.Handle("GET /readyz", &checks)
	admin.Handle("GET /readyz/{role}", &checks)
	if plain != nil {
		// The recovery funnel report (report.Handler): any role with Redis can serve it.
		admin.Handle("GET /report", report.Handler(plain, nil, logger.With("component", "report")))
	}
	for pattern, h := range cfg.devHandlers {
		admin.Handle(pattern, h)
	}
	var adminGroup errgroup.Group
	adminCtx, cancelAdmin := context.WithCancel(context.Background())
	defer cancelAdmin()
	if err := startHTTP(adminCtx, &adminGroup, "admin", nil, cfg.AdminAddr, admin, time.Second, logger, stdout); err != nil {
		return err
	}
	logger.Info("resumer started", "version", version, "roles", strings.Join(cfg.Roles, ","))

	// A role that fails stops the others; the admin listener stays up until they have drained.
	roleErr := make(chan error, 1)
	go func() { roleErr <- g.Wait() }()
	var err error
	select {
	case <-ctx.Done():
		cancelRoles()
		err = <-roleErr
	case err = <-roleErr:
		cancelRoles()
	}
	cancelAdmin()
	if aerr := adminGroup.Wait(); err == nil {
		err = aerr
	}
	logger.Info("resumer stopped")
	return err
}

// openRedis returns a client of the Redis deployment RESUMER_REDIS_URL names (one node, a
// Cluster or Sentinel; see internal/redisconn), with the RESUMER_REDIS_TLS_* files. It fails
// only on a bad URL or TLS file, naming the variables.
func openRedis(cfg *config) (redis.UniversalClient, error) {
	rdb, _, err := redisconn.NewWithTLS(cfg.RedisURL, cfg.RedisTLS)
	if err != nil {
		if cfg.RedisTLS.IsZero() {
			return nil, fmt.Errorf("RESUMER_REDIS_URL: %w", err)
		}
		return nil, fmt.Errorf("RESUMER_REDIS_URL with RESUMER_REDIS_TLS_*_FILE: %w", err)
	}
	return rdb, nil
}

// stateConfig is the state store's configuration; reg (nil: none) registers its funnel
// metrics.
func stateConfig(cfg *config, reg prometheus.Registerer) state.Config {
	acks := cfg.RedisReplicaAcks
	if acks < 0 {
		acks = 0
		if _, mode, err := redisconn.Parse(cfg.RedisURL); err == nil && mode != redisconn.Single {
			acks = 1
		}
	}
	return state.Config{
		ReplicaAcks:      acks,
		FunnelRetention:  cfg.FunnelRetention,
		Registerer:       reg,
		RemindBefore:     cfg.RemindBefore,
		Prefix:           cfg.RedisPrefix,
		Shards:           cfg.RedisShards,
		EventMemory:      cfg.EventMemory,
		Retention:        cfg.Retention,
		ExpiryDefault:    cfg.ExpiryDefault,
		ExpiryByTemplate: cfg.ExpiryByTemplate,
		WinbackContact:   cfg.WinbackWithin > 0,
	}
}

// ensureStreams creates or updates the events and dead-letter streams, retrying with backoff
// while NATS is unreachable, until ctx is cancelled.
func ensureStreams(ctx context.Context, js jetstream.JetStream, link *natsLink, cfg *config, logger *slog.Logger) error {
	bo := backoff.NewExponentialBackOff()
	bo.MaxElapsedTime = 0
	bo.MaxInterval = 10 * time.Second
	op := func() error {
		if err := link.check(ctx); err != nil {
			return err // connectNATS logs why, once per reason
		}
		opCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := eventstream.Ensure(opCtx, js, eventstream.Config{
			Name: cfg.Stream, DedupWindow: cfg.DedupWindow, MaxAge: cfg.StreamMaxAge, Replicas: cfg.StreamReplicas,
			Subjects: cfg.Subjects,
		}); err != nil {
			if errors.Is(err, eventstream.ErrSubjectsOverlap) {
				// Another deployment (or an old stream) in this NATS account claims the
				// subjects: waiting does not help.
				return backoff.Permanent(fmt.Errorf("%w; give each deployment sharing a NATS account its own RESUMER_SUBJECT_PREFIX (now %s) and RESUMER_STREAM, or delete the stream in the way",
					err, cfg.Subjects.Prefix()))
			}
			logger.Warn("events stream not ready, retrying", "stream", cfg.Stream, "err", err)
			return err
		}
		if cfg.has("worker") {
			if _, err := eventstream.EnsureDLQ(opCtx, js, cfg.DLQStream, cfg.StreamReplicas); err != nil {
				logger.Warn("dead-letter stream not ready, retrying", "stream", cfg.DLQStream, "err", err)
				return err
			}
		}
		return nil
	}
	if err := backoff.Retry(op, backoff.WithContext(bo, ctx)); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	logger.Info("events stream ready", "stream", cfg.Stream)
	return nil
}

// startHTTP serves h on ln (or, when ln is nil, a new listener on addr) in g until ctx is
// cancelled, then shuts down within grace. The bound address is printed to stdout so callers
// of ":0" can find it.
func startHTTP(ctx context.Context, g *errgroup.Group, name string, ln net.Listener, addr string, h http.Handler, grace time.Duration, logger *slog.Logger, stdout io.Writer) error {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("listen %s on %s: %w", name, addr, err)
		}
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "resumer: %s listening on http://%s\n", name, ln.Addr())
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve %s: %w", name, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shut down %s: %w", name, err)
		}
		return nil
	})
	return nil
}
