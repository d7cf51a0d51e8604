// Package mailcatch is an in-process SMTP server that accepts mail and keeps it in memory, for
// tests (Start) and for `resumer dev` (New and ListenAndServe, with Handler showing the caught
// mail at /dev/mail on the admin listener). It is built on github.com/emersion/go-smtp.
//
// It can require AUTH PLAIN, offer STARTTLS or speak implicit TLS with a self-signed
// certificate it generates for 127.0.0.1, ::1 and localhost, advertise SMTPUTF8 or refuse
// non-ASCII addresses, reject recipients with 550 and answer 451 to simulate an outage. Nothing is delivered anywhere. It is not meant to face a
// network: anyone who can connect can fill its memory up to MaxMessages messages.
package mailcatch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Options configures a Catcher. The zero value accepts any mail without AUTH or TLS.
type Options struct {
	// Username and Password, when Username is set, make AUTH PLAIN required before MAIL FROM
	// and the only mechanism offered. Without STARTTLS or ImplicitTLS, AUTH is allowed in
	// clear text.
	Username, Password string
	// STARTTLS offers STARTTLS with the generated certificate.
	STARTTLS bool
	// ImplicitTLS serves TLS from the first byte (smtps://) with the generated certificate.
	ImplicitTLS bool
	// RejectRecipient, when set, is asked about every RCPT TO; true answers 550 5.1.1 with
	// the address in the reply text, as real servers do.
	RejectRecipient func(address string) bool
	// SMTPUTF8 advertises SMTPUTF8 (RFC 6531). Without it, like a real server, the catcher
	// answers 553 5.6.7 to a MAIL FROM or RCPT TO address with non-ASCII characters and to a
	// MAIL FROM with the SMTPUTF8 parameter.
	SMTPUTF8 bool
	// DataDelay, when set, is how long the catcher waits before accepting a message's data:
	// the message is caught at once and the 250 reply comes DataDelay later, like a slow
	// server, so that a sender can be stopped after its message arrived and before it knew.
	DataDelay time.Duration
	// MaxMessages is how many messages are kept; the oldest go first. 1000 when zero.
	MaxMessages int
	// OnMessage, when set, is called (in a goroutine of its own) with every caught message;
	// `resumer dev` logs them with it.
	OnMessage func(Message)
	// Logger gets the SMTP server's errors; nothing when nil.
	Logger *slog.Logger
}

// Catcher is an SMTP server that keeps the messages it accepts. It is safe for concurrent
// use. A Catcher serves once: after Close (or the end of ListenAndServe's ctx) it cannot be
// started again.
type Catcher struct {
	opts   Options
	server *smtp.Server
	cert   *x509.Certificate // nil without TLS

	mu       sync.Mutex
	messages []Message
	failNext int
	addr     net.Addr
	changed  chan struct{} // closed and replaced whenever messages change
}

// New returns a Catcher that is not listening yet. It fails only when generating the TLS
// certificate fails.
func New(opts Options) (*Catcher, error) {
	if opts.MaxMessages <= 0 {
		opts.MaxMessages = 1000
	}
	c := &Catcher{opts: opts, changed: make(chan struct{})}
	s := smtp.NewServer(backend{c})
	s.Domain = "mailcatch.localhost"
	s.MaxMessageBytes = 10 << 20
	s.MaxRecipients = 100
	s.ReadTimeout = time.Minute
	s.WriteTimeout = time.Minute
	s.ErrorLog = slogLogger{logger(opts.Logger)}
	s.AllowInsecureAuth = !opts.STARTTLS && !opts.ImplicitTLS
	s.EnableSMTPUTF8 = opts.SMTPUTF8
	if opts.STARTTLS || opts.ImplicitTLS {
		cert, parsed, err := selfSignedCert()
		if err != nil {
			return nil, fmt.Errorf("create mail catcher: %w", err)
		}
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		c.cert = parsed
	}
	c.server = s
	return c, nil
}

// Start starts a Catcher on a random loopback port for the test and closes it when the test
// ends. It fails the test when the server cannot start.
func Start(tb testing.TB, opts Options) *Catcher {
	tb.Helper()
	c, err := New(opts)
	if err != nil {
		tb.Fatalf("start mail catcher: %v", err)
	}
	l, err := c.Listen("127.0.0.1:0")
	if err != nil {
		tb.Fatalf("start mail catcher: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Serve(l)
	}()
	tb.Cleanup(func() {
		_ = c.Close()
		_ = l.Close() // in case Serve had not registered l when Close ran
		<-done
	})
	return c
}

// Listen opens the listener Serve takes, wrapped in TLS with ImplicitTLS, and records its
// address for Addr and URL.
func (c *Catcher) Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for smtp on %s: %w", addr, err)
	}
	c.mu.Lock()
	c.addr = l.Addr()
	c.mu.Unlock()
	if c.opts.ImplicitTLS {
		l = tls.NewListener(l, c.server.TLSConfig)
	}
	return l, nil
}

// Serve accepts SMTP connections on l until Close. It returns nil after Close.
func (c *Catcher) Serve(l net.Listener) error {
	err := c.server.Serve(l)
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// ListenAndServe listens on addr and serves until ctx ends, then closes the server and
// returns nil. It returns the error when listening or serving fails.
func (c *Catcher) ListenAndServe(ctx context.Context, addr string) error {
	l, err := c.Listen(addr)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		_ = c.Close()
		_ = l.Close() // in case Serve had not registered l when Close ran
	})
	defer stop()
	return c.Serve(l)
}

// Close stops the server and drops open connections. Caught messages stay readable.
func (c *Catcher) Close() error {
	err := c.server.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Addr returns the listening address ("127.0.0.1:40123"), or "" before Listen.
func (c *Catcher) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.addr == nil {
		return ""
	}
	return c.addr.String()
}

// URL returns the server's URL for notify.EmailOptions: smtp://host:port, or smtps:// with
// ImplicitTLS, with the configured user and password in it. It is "" before Listen.
func (c *Catcher) URL() string {
	addr := c.Addr()
	if addr == "" {
		return ""
	}
	u := url.URL{Scheme: "smtp", Host: addr}
	if c.opts.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if c.opts.Username != "" {
		u.User = url.UserPassword(c.opts.Username, c.opts.Password)
	}
	return u.String()
}

// RootCAs returns a pool holding the generated certificate, for a client's tls.Config, or
// nil without STARTTLS or ImplicitTLS.
func (c *Catcher) RootCAs() *x509.CertPool {
	if c.cert == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.cert)
	return pool
}

// ClientTLSConfig returns a client configuration that trusts the generated certificate, or
// nil without STARTTLS or ImplicitTLS.
func (c *Catcher) ClientTLSConfig() *tls.Config {
	if c.cert == nil {
		return nil
	}
	return &tls.Config{RootCAs: c.RootCAs(), MinVersion: tls.VersionTLS12}
}

// FailNext makes the server answer 451 4.3.0 to the RCPT TO of the next n messages, as a
// server that is temporarily unable to accept mail would. The reply text echoes the address.
func (c *Catcher) FailNext(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failNext = n
}

// takeFailure reports whether the current message should be refused with 451.
func (c *Catcher) takeFailure() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failNext <= 0 {
		return false
	}
	c.failNext--
	return true
}

// Messages returns a copy of the caught messages, oldest first.
func (c *Catcher) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.messages...)
}

// Reset forgets every caught message.
func (c *Catcher) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.messages = nil
	close(c.changed)
	c.changed = make(chan struct{})
}

// WaitFor waits until at least n messages are caught and returns them. It fails when timeout
// passes first, returning what was caught by then.
func (c *Catcher) WaitFor(n int, timeout time.Duration) ([]Message, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		msgs, changed := append([]Message(nil), c.messages...), c.changed
		c.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return msgs, fmt.Errorf("wait for %d messages: %d caught after %s", n, len(msgs), timeout)
		}
	}
}

// store keeps m, dropping the oldest message beyond MaxMessages.
func (c *Catcher) store(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.messages = append(c.messages, m)
	if over := len(c.messages) - c.opts.MaxMessages; over > 0 {
		c.messages = append([]Message(nil), c.messages[over:]...)
	}
	close(c.changed)
	c.changed = make(chan struct{})
	if c.opts.OnMessage != nil {
		go c.opts.OnMessage(m)
	}
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.With("component", "mailcatch")
}

// slogLogger adapts slog to go-smtp's Logger.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Printf(format string, v ...any) { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s slogLogger) Println(v ...any)               { s.l.Warn(fmt.Sprint(v...)) }
