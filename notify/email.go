package notify

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/idna"

	"github.com/resumer/resumer/brand"
)

// EmailOptions configures an EmailChannel.
type EmailOptions struct {
	// URL is the SMTP server: smtp://[user[:password]@]host[:port] (port 587 by default;
	// STARTTLS when the server offers it) or smtps://... (implicit TLS, port 465 by default).
	// With a user the channel authenticates with AUTH PLAIN, which net/smtp refuses over an
	// unencrypted connection to anything but localhost. Required.
	URL string
	// Password, when not empty, replaces the URL's password (the caller reads it from a
	// *_FILE so it stays out of the URL).
	Password string
	// From is the sender, like "Acme <verify@acme.example>". Its domain also names the
	// Message-ID. Required.
	From string
	// RequireTLS makes an smtp:// channel fail (retry false) when the server does not offer
	// STARTTLS, instead of sending in clear text.
	RequireTLS bool
	// TLSConfig is used for STARTTLS and smtps://; nil means the system roots and the URL's
	// host as server name. Tests pass the catcher's RootCAs here.
	TLSConfig *tls.Config
	// HelloName is the name sent with EHLO; "localhost" when empty.
	HelloName string
	// DialTimeout bounds connecting (TCP and implicit TLS); 10 s when zero.
	DialTimeout time.Duration
	// Timeout bounds a whole SMTP dialogue when ctx has no earlier deadline; 60 s when zero.
	Timeout time.Duration
	// TemplatesDir, when not empty, is a directory whose *.tmpl files replace the embedded
	// templates of the same name (reminder.txt.tmpl, reminder.html.tmpl, subject.txt.tmpl,
	// subject.1h.txt.tmpl, layout.html.tmpl) or add stage-specific ones
	// (reminder.6h.html.tmpl ...). Files at its top apply to every locale; files in a
	// subdirectory named for a locale (es/, de/) to that locale, after the top's.
	TemplatesDir string
	// Brands pick the brand of each reminder (by the inquiry's template id or reference
	// id): its name, logo, colour, support and footer in the message, its Sender as From, its
	// TemplatesDir over this one, its Locale as the default. nil: the neutral brand.
	Brands *brand.Set
	// Now is the clock for the Date header and for reminders without Now; time.Now when nil.
	Now func() time.Time
	// Logger gets a debug line per sent reminder (never the address or the link); nothing
	// when nil.
	Logger *slog.Logger
	// Registerer registers the channel metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
}

// EmailChannel sends reminders as multipart/alternative (text and HTML) e-mails over SMTP,
// one connection per reminder. It is safe for concurrent use.
type EmailChannel struct {
	smtp smtpConfig
	// from is the default sender; senders overrides it by brand id.
	from      sender
	brands    *brand.Set
	senders   map[string]sender
	templates *catalog
	now       func() time.Time
	log       *slog.Logger
	metrics   channelMetrics
}

var _ Channel = (*EmailChannel)(nil)

// NewEmailChannel checks opts, parses every template (embedded and from TemplatesDir) and
// returns the channel. It fails on a bad URL or From address and on a template that does not
// parse; the errors never contain the SMTP password.
func NewEmailChannel(opts EmailOptions) (*EmailChannel, error) {
	cfg, err := parseSMTPURL(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.Password != "" {
		cfg.password = opts.Password
	}
	if cfg.username != "" && cfg.password == "" {
		return nil, errors.New("configure smtp: the url has a user but no password is set")
	}
	cfg.requireTLS = opts.RequireTLS
	cfg.tlsConfig = opts.TLSConfig
	cfg.helloName = cmp.Or(opts.HelloName, "localhost")
	cfg.dialTimeout = cmp.Or(opts.DialTimeout, 10*time.Second)
	cfg.timeout = cmp.Or(opts.Timeout, 60*time.Second)

	from, err := parseSender(opts.From)
	if err != nil {
		return nil, err
	}
	tmpl, err := loadCatalog(opts.TemplatesDir, opts.Brands.All())
	if err != nil {
		return nil, err
	}
	senders := map[string]sender{}
	for _, b := range opts.Brands.All() {
		if b.Sender == "" {
			continue
		}
		s, err := parseSender(b.Sender)
		if err != nil {
			return nil, fmt.Errorf("brand %s: %w", b.ID, err)
		}
		senders[b.ID] = s
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &EmailChannel{
		smtp:      cfg,
		from:      from,
		brands:    opts.Brands,
		senders:   senders,
		templates: tmpl,
		now:       now,
		log:       log.With("component", "notify", "channel", "email"),
		metrics:   newChannelMetrics(opts.Registerer, "email"),
	}, nil
}

// Name returns "email".
func (c *EmailChannel) Name() string { return "email" }

// Send renders the reminder e-mail and makes one SMTP delivery attempt. It returns
// ErrNoContact (retry false) when r has no e-mail address; ErrInvalidReminder (retry false)
// when the address does not parse or r lacks its inquiry id, stage, expiry or link;
// ErrUndeliverable (retry false) when the address's domain is not a valid IDN or its local
// part is not ASCII and the server does not offer SMTPUTF8 (an IDN domain is sent as
// punycode, never as 8-bit); a
// template error with retry false; and otherwise an error wrapping *SMTPError or the network
// error: retry is true for 4xx replies, network failures, timeouts, TLS handshake failures
// and ctx ending, false for 5xx replies and for a server that lacks what the configuration
// requires (STARTTLS, AUTH), and false for ErrMaybeDelivered (the whole message went out
// and no reply came: the connection broke or ctx ended while the server held it). No error contains the address, the link or the server's reply
// text. ErrNoContact and a reminder missing a required field are refused before any attempt
// and not counted in the channel metrics.
func (c *EmailChannel) Send(ctx context.Context, r *Reminder) (retry bool, err error) {
	if err := r.validate(); err != nil {
		return false, fmt.Errorf("send reminder by e-mail: %w", err)
	}
	if strings.TrimSpace(r.EmailAddress) == "" {
		return false, fmt.Errorf("send %s reminder for inquiry %s by e-mail: %w", r.Stage, r.InquiryID, ErrNoContact)
	}
	start := time.Now()
	retry, err = c.send(ctx, r)
	c.metrics.observe(start, retry, err)
	if err != nil {
		return retry, fmt.Errorf("send %s reminder for inquiry %s by e-mail: %w", r.Stage, r.InquiryID, err)
	}
	c.log.DebugContext(ctx, "reminder sent", "inquiry_id", r.InquiryID, "stage", r.Stage.Name,
		"duration", time.Since(start))
	return false, nil
}

func (c *EmailChannel) send(ctx context.Context, r *Reminder) (bool, error) {
	to, err := mail.ParseAddress(r.EmailAddress)
	if err != nil {
		return false, fmt.Errorf("%w: e-mail address does not parse", ErrInvalidReminder)
	}
	addr, err := envelopeAddress(to.Address)
	if err != nil {
		return false, err
	}
	msg, from, err := c.compose(r, addr)
	if err != nil {
		return false, err
	}
	if err := c.smtp.deliver(ctx, from, addr, msg); err != nil {
		return retryable(ctx, err), err
	}
	return false, nil
}

// envelopeAddress returns address with its domain in ASCII: an internationalized domain
// (IDN) becomes its punycode A-labels ("jane@bücher.example" -> "jane@xn--bcher-kva.example"),
// so that neither RCPT TO nor To: ever carries it as 8-bit. A domain that is not a valid IDN
// is ErrUndeliverable. The local part is kept: a non-ASCII one is sent only over SMTPUTF8
// (see smtpConfig.deliver). Errors never contain the address.
func envelopeAddress(address string) (string, error) {
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return "", fmt.Errorf("%w: e-mail address has no domain", ErrInvalidReminder)
	}
	local, domain := address[:at], address[at+1:]
	if isASCII(domain) {
		return address, nil
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return "", &permanentError{fmt.Errorf("%w: the e-mail domain is not a valid internationalized domain name", ErrUndeliverable)}
	}
	return local + "@" + ascii, nil
}

// isASCII reports whether s is 7-bit.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// sender is a parsed From address and its domain (for the Message-ID).
type sender struct {
	addr   *mail.Address
	domain string
}

// parseSender parses a From address such as "Acme <verify@acme.example>".
func parseSender(s string) (sender, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return sender{}, fmt.Errorf("parse from address %q: %w", s, err)
	}
	_, domain, ok := strings.Cut(a.Address, "@")
	if !ok || domain == "" {
		return sender{}, fmt.Errorf("parse from address %q: no domain", s)
	}
	return sender{addr: a, domain: domain}, nil
}

// render picks r's brand and locale and renders its parts.
func (c *EmailChannel) render(r *Reminder, now time.Time) (renderedMessage, *brand.Brand, error) {
	b, locale := brandAndLocale(c.brands, r)
	parts, err := c.templates.get(b.ID, locale).render(templateData(r, now, b, locale))
	return parts, b, err
}

// compose renders r and returns the complete message, headers and CRLF line ends included,
// and the envelope sender.
func (c *EmailChannel) compose(r *Reminder, to string) ([]byte, string, error) {
	now := c.now()
	parts, b, err := c.render(r, now)
	if err != nil {
		// Template errors name fields, not values; scrub anyway so a custom template's
		// error can never carry the address or the link.
		return nil, "", errors.New(scrub(err.Error(), r.Link, r.EmailAddress))
	}
	from := c.from
	if s, ok := c.senders[b.ID]; ok {
		from = s
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range []struct{ typ, content string }{
		{"text/plain; charset=utf-8", parts.Text},
		{"text/html; charset=utf-8", parts.HTML},
	} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.typ},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, "", fmt.Errorf("write message part: %w", err)
		}
		if err := writeQuotedPrintable(w, p.content); err != nil {
			return nil, "", fmt.Errorf("write message part: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", fmt.Errorf("write message: %w", err)
	}

	var msg bytes.Buffer
	header := func(k, v string) { writeHeader(&msg, k, v) }
	header("Date", now.Format(time.RFC1123Z))
	header("From", from.addr.String())
	header("To", (&mail.Address{Address: to}).String())
	header("Subject", mime.QEncoding.Encode("utf-8", parts.Subject))
	header("Message-ID", MessageID(r.InquiryID, r.Stage.Name, from.domain))
	header("Auto-Submitted", "auto-generated")
	header("MIME-Version", "1.0")
	header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), from.addr.Address, nil
}

// MessageID returns the Message-ID of the reminder e-mail for an inquiry's stage:
// <resumer.HASH@domain>, where HASH is the first 32 hex digits of SHA-256 over the inquiry id
// and the stage name. A resent reminder carries the same id, so mail systems and people can
// recognise it as the same message.
func MessageID(inquiryID, stage, domain string) string {
	return "<resumer." + reminderHash(inquiryID, stage) + "@" + domain + ">"
}

// reminderHash is the stable hex hash of an inquiry's stage used in Message-ID and webhook-id.
func reminderHash(inquiryID, stage string) string {
	sum := sha256.Sum256([]byte(inquiryID + "\x00" + stage))
	return hex.EncodeToString(sum[:16])
}

// writeHeader writes one header field, folded at spaces so lines stay within 78 characters
// where the value allows (RFC 5322 section 2.2.3). Folding happens only before a space, so
// unfolding restores the value; between RFC 2047 encoded words the space is insignificant.
func writeHeader(buf *bytes.Buffer, key, value string) {
	line := key + ":"
	for i, word := range strings.Split(value, " ") {
		if i > 0 && len(line)+1+len(word) > 78 {
			buf.WriteString(line + "\r\n")
			line = ""
		}
		line += " " + word
	}
	buf.WriteString(line + "\r\n")
}

// writeQuotedPrintable writes s quoted-printable encoded, with CRLF line ends.
func writeQuotedPrintable(w io.Writer, s string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := io.WriteString(qp, s); err != nil {
		return err
	}
	return qp.Close()
}

// scrub replaces every non-empty secret in s with "[redacted]".
func scrub(s string, secrets ...string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}
