package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// SMTPError is a negative reply of the SMTP server. It keeps the reply code and the enhanced
// status code but never the reply text, which often echoes the recipient address
// ("550 5.1.1 <jane@example.com>: mailbox unavailable").
type SMTPError struct {
	// Command is the step of the dialogue the server refused: "greeting", "EHLO", "STARTTLS",
	// "AUTH", "MAIL FROM", "RCPT TO", "DATA" or "end of data".
	Command string
	// Code is the reply code, like 451 or 550.
	Code int
	// EnhancedCode is the RFC 3463 status code at the start of the reply text ("5.1.1"),
	// or empty.
	EnhancedCode string
}

// Error returns "smtp COMMAND: server replied CODE [ENHANCED]".
func (e *SMTPError) Error() string {
	s := "smtp " + e.Command + ": server replied " + strconv.Itoa(e.Code)
	if e.EnhancedCode != "" {
		s += " " + e.EnhancedCode
	}
	return s
}

// Temporary reports whether the reply is a transient (4xx) one, worth retrying later.
func (e *SMTPError) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// permanentError marks a failure that retrying cannot fix: the server lacks something the
// configuration requires.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// retryable classifies a delivery error once, the Alertmanager way: the caller's context
// ending, network failures, timeouts and TLS handshake failures are worth a retry, as are 4xx
// replies; 5xx replies, configuration mismatches and a message that may have been delivered
// (ErrMaybeDelivered) are not.
func retryable(ctx context.Context, err error) bool {
	if errors.Is(err, ErrMaybeDelivered) {
		// The server may have the message: another attempt could deliver it twice.
		return false
	}
	if ctx.Err() != nil {
		return true
	}
	var se *SMTPError
	if errors.As(err, &se) {
		return se.Code < 500
	}
	var pe *permanentError
	return !errors.As(err, &pe)
}

// smtpConfig is the parsed SMTP configuration of an EmailChannel.
type smtpConfig struct {
	host, port         string
	implicitTLS        bool
	username, password string
	requireTLS         bool
	tlsConfig          *tls.Config
	helloName          string
	dialTimeout        time.Duration
	timeout            time.Duration
}

// parseSMTPURL parses smtp://[user[:password]@]host[:port] and smtps://... Its errors never
// contain the URL, so never the password.
func parseSMTPURL(raw string) (smtpConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return smtpConfig{}, fmt.Errorf("parse smtp url: %w", err)
	}
	var cfg smtpConfig
	switch u.Scheme {
	case "smtp":
		cfg.port = "587"
	case "smtps":
		cfg.port, cfg.implicitTLS = "465", true
	default:
		return smtpConfig{}, fmt.Errorf("parse smtp url: scheme %q, want smtp or smtps", u.Scheme)
	}
	cfg.host = u.Hostname()
	if cfg.host == "" {
		return smtpConfig{}, errors.New("parse smtp url: no host")
	}
	if p := u.Port(); p != "" {
		cfg.port = p
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return smtpConfig{}, errors.New("parse smtp url: want no path, query or fragment")
	}
	if u.User != nil {
		cfg.username = u.User.Username()
		cfg.password, _ = u.User.Password()
	}
	return cfg, nil
}

// tls returns the TLS configuration for STARTTLS and implicit TLS.
func (cfg smtpConfig) tls() *tls.Config {
	var c *tls.Config
	if cfg.tlsConfig != nil {
		c = cfg.tlsConfig.Clone()
	} else {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.ServerName == "" {
		c.ServerName = cfg.host
	}
	return c
}

// deliver runs one SMTP dialogue that submits msg from from to to. A non-ASCII address is
// sent only to a server that offers SMTPUTF8 (else a *permanentError wrapping
// ErrUndeliverable, before MAIL FROM). The dialogue ends at the
// earlier of ctx's deadline and cfg.timeout, and at once when ctx is cancelled. Errors are
// *SMTPError for negative replies, *permanentError for configuration mismatches, an error
// wrapping ErrMaybeDelivered when the end of data was sent and no reply came (the server may
// have the message), and network errors otherwise; none carries the server's reply text.
func (cfg smtpConfig) deliver(ctx context.Context, from, to string, msg []byte) (err error) {
	defer func() {
		// The deadline set when ctx ended shows as an i/o timeout: say why.
		if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w: %w", err, context.Cause(ctx))
		}
	}()
	deadline := time.Now().Add(cfg.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dialCtx, cancel := context.WithTimeout(ctx, cfg.dialTimeout)
	defer cancel()
	addr := net.JoinHostPort(cfg.host, cfg.port)
	dialer := &net.Dialer{}
	var conn net.Conn
	if cfg.implicitTLS {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: cfg.tls()}).DialContext(dialCtx, "tcp", addr)
	} else {
		conn, err = dialer.DialContext(dialCtx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("smtp connect: %w", err)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return fmt.Errorf("smtp connect: %w", err)
	}
	// Cancelling ctx aborts whatever read or write is under way.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, cfg.host)
	if err != nil {
		conn.Close()
		return stepError("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(cfg.helloName); err != nil {
		return stepError("EHLO", err)
	}
	if !cfg.implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(cfg.tls()); err != nil {
				return stepError("STARTTLS", err)
			}
		} else if cfg.requireTLS {
			return &permanentError{errors.New("smtp STARTTLS: the server does not offer it and TLS is required")}
		}
	}
	if cfg.username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return &permanentError{errors.New("smtp AUTH: the server does not offer it and credentials are configured")}
		}
		if err := c.Auth(smtp.PlainAuth("", cfg.username, cfg.password, cfg.host)); err != nil {
			if _, ok := errors.AsType[*textproto.Error](err); ok || isNetError(err) {
				return stepError("AUTH", err)
			}
			// net/smtp's own refusals: no PLAIN over an unencrypted connection, wrong host.
			return &permanentError{fmt.Errorf("smtp AUTH: %w", err)}
		}
	}
	if !isASCII(from) || !isASCII(to) {
		// RFC 6531: an address with a non-ASCII local part needs the server's SMTPUTF8
		// (net/smtp then adds the SMTPUTF8 parameter to MAIL FROM); without it the address
		// would go out as raw 8-bit in RCPT TO and To:, which nothing may.
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return &permanentError{fmt.Errorf("smtp MAIL FROM: %w: the address is not ASCII and the server does not offer SMTPUTF8", ErrUndeliverable)}
		}
	}
	if err := c.Mail(from); err != nil {
		return stepError("MAIL FROM", err)
	}
	if err := c.Rcpt(to); err != nil {
		return stepError("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return stepError("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return stepError("DATA", err)
	}
	// Past the end of data the message is the server's: a failure without a reply may hide a
	// delivery. So check the time once more just before (a process stalled since the last
	// read may wake after its deadline, before the connection's timer has fired) and leave
	// the connection without the end of data when it is up: the server drops the message.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("smtp end of data: not sent: %w", context.Cause(ctx))
	}
	if !time.Now().Before(deadline) {
		return fmt.Errorf("smtp end of data: not sent: %w", context.DeadlineExceeded)
	}
	if err := w.Close(); err != nil {
		if _, ok := errors.AsType[*textproto.Error](err); ok {
			// The server answered: a 4xx refused the message (a retry is safe), a 5xx for good.
			return stepError("end of data", err)
		}
		return fmt.Errorf("%w: %w", ErrMaybeDelivered, stepError("end of data", err))
	}
	// The message is accepted; a failing QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// enhancedCodeRE matches an RFC 3463 enhanced status code at the start of a reply text.
var enhancedCodeRE = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}\b`)

// stepError turns a net/smtp error at one step of the dialogue into an error that keeps the
// reply code but drops the reply text: a negative reply becomes *SMTPError, a malformed reply
// (whose error quotes the line) a generic error, anything else (network) is wrapped.
func stepError(step string, err error) error {
	if tp, ok := errors.AsType[*textproto.Error](err); ok {
		return &SMTPError{Command: step, Code: tp.Code, EnhancedCode: enhancedCodeRE.FindString(tp.Msg)}
	}
	if _, ok := errors.AsType[textproto.ProtocolError](err); ok {
		return fmt.Errorf("smtp %s: malformed server reply", step)
	}
	return fmt.Errorf("smtp %s: %w", step, err)
}

// isNetError reports whether err comes from the connection rather than from net/smtp itself.
func isNetError(err error) bool {
	_, ok := errors.AsType[net.Error](err)
	return ok || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded)
}
