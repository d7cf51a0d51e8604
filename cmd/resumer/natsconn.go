package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/resumer/resumer/webhook"
)

// natsLink is resumer's connection to NATS and what it last learnt about it. While NATS is
// away nats.go's own errors say little ("headers not supported by this server", "outbound
// buffer limit exceeded": it has no server yet, or no buffer for one); natsLink keeps the
// real reason (say "dial tcp 127.0.0.1:4222: connect: connection refused") for the log, the
// readiness check and the errors of publishes made meanwhile.
type natsLink struct {
	nc      *nats.Conn
	lastErr atomic.Pointer[string]
}

// connectNATS connects to url, retrying in the background for ever: the returned link exists
// even while NATS is down. Connection failures are logged once per distinct reason.
func connectNATS(url string, logger *slog.Logger) (*natsLink, error) {
	l := &natsLink{}
	var logged atomic.Pointer[string]
	note := func(err error) {
		if err == nil {
			return
		}
		msg := err.Error()
		l.lastErr.Store(&msg)
		if prev := logged.Swap(&msg); prev == nil || *prev != msg {
			logger.Warn("nats unreachable, retrying", "err", msg)
		}
	}
	nc, err := nats.Connect(url,
		nats.Name("resumer"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		// No reconnect buffer: a publish while NATS is away fails at once, so the receiver
		// answers 503 and Persona retries, instead of waiting out the publish timeout.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "err", err.Error())
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { note(err) }),
		nats.ConnectHandler(func(*nats.Conn) {
			logged.Store(nil)
			logger.Info("nats connected")
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			logged.Store(nil)
			logger.Info("nats reconnected")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			logger.Warn("nats asynchronous error", "subject", subject, "err", err.Error())
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	l.nc = nc
	return l, nil
}

// errNATSDown is wrapped by the errors of work refused because NATS is not connected.
var errNATSDown = errors.New("nats not connected")

// check is the readiness check: nil while connected, else the reason.
func (l *natsLink) check(context.Context) error {
	if l.nc.IsConnected() {
		return nil
	}
	if last := l.lastErr.Load(); last != nil {
		return fmt.Errorf("%w (%s): %s", errNATSDown, l.nc.Status(), *last)
	}
	return fmt.Errorf("%w (%s)", errNATSDown, l.nc.Status())
}

// publisher guards a JetStream publisher: while NATS is not connected a publish fails at once
// with the connection's real error instead of nats.go's placeholder.
// It is a webhook.AsyncPublisher, so the receiver publishes through PubAck futures.
func (l *natsLink) publisher(js jetstream.JetStream) webhook.AsyncPublisher {
	return guardedPublisher{link: l, js: js}
}

type guardedPublisher struct {
	link *natsLink
	js   jetstream.JetStream
}

func (p guardedPublisher) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if err := p.link.check(ctx); err != nil {
		return nil, err
	}
	return p.js.PublishMsg(ctx, msg, opts...)
}

func (p guardedPublisher) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if err := p.link.check(context.Background()); err != nil {
		return nil, err
	}
	return p.js.PublishMsgAsync(msg, opts...)
}
