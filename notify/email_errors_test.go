package notify

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resumer/resumer/internal/mailcatch"
)

// assertNoSecrets fails when err's text carries the address, the link, its token or a
// password.
func assertNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append([]string{testAddress, "jane.doe", testLink, "tok_SECRET"}, secrets...) {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains %q", err, s)
		}
	}
}

// silentListener accepts connections and never says a word, like a hung server.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()
	return "smtp://" + l.Addr().String()
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "smtp://" + addr
}

func TestEmailErrorClassification(t *testing.T) {
	brokenTemplates := t.TempDir()
	if err := os.WriteFile(filepath.Join(brokenTemplates, "reminder.txt.tmpl"), []byte("Hi {{.NoSuchField}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	rejectAll := func(string) bool { return true }

	tests := []struct {
		name      string
		opts      mailcatch.Options
		failNext  int
		edit      func(*EmailOptions, *mailcatch.Catcher)
		reminder  func(*Reminder)
		ctx       func() context.Context
		wantRetry bool
		wantCode  int    // the SMTPError code, when the server refused
		wantIs    error  // a sentinel the error must wrap, when not nil
		wantText  string // a part of the error text
		uncounted bool   // an invalid reminder is refused before any attempt
		caught    int    // messages the server has in the end (the whole message went out)
	}{
		{name: "451 at RCPT TO", failNext: 1, wantRetry: true, wantCode: 451, wantText: "smtp RCPT TO: server replied 451 4.3.0"},
		{name: "550 at RCPT TO", opts: mailcatch.Options{RejectRecipient: rejectAll}, wantRetry: false, wantCode: 550, wantText: "550 5.1.1"},
		{name: "535 wrong password", opts: mailcatch.Options{Username: "u", Password: "right"},
			edit:      func(o *EmailOptions, _ *mailcatch.Catcher) { o.Password = "wrong-s3cret" },
			wantRetry: false, wantCode: 535, wantText: "smtp AUTH"},
		{name: "STARTTLS required but not offered",
			edit:      func(o *EmailOptions, _ *mailcatch.Catcher) { o.RequireTLS = true },
			wantRetry: false, wantText: "STARTTLS"},
		{name: "AUTH configured but not offered",
			edit:      func(o *EmailOptions, c *mailcatch.Catcher) { o.URL = "smtp://u:p@" + c.Addr() },
			wantRetry: false, wantText: "AUTH"},
		{name: "untrusted certificate", opts: mailcatch.Options{STARTTLS: true},
			wantRetry: true, wantText: "STARTTLS"},
		{name: "connection refused",
			edit:      func(o *EmailOptions, _ *mailcatch.Catcher) { o.URL = closedPort(t) },
			wantRetry: true, wantText: "connect"},
		{name: "server hangs",
			edit: func(o *EmailOptions, _ *mailcatch.Catcher) {
				o.URL = silentListener(t)
				o.Timeout = 200 * time.Millisecond
			},
			wantRetry: true, wantIs: os.ErrDeadlineExceeded},
		{name: "no reply after the end of data",
			opts:      mailcatch.Options{DataDelay: 3 * time.Second},
			edit:      func(o *EmailOptions, _ *mailcatch.Catcher) { o.Timeout = time.Second },
			wantRetry: false, wantIs: ErrMaybeDelivered, wantText: "smtp end of data", caught: 1},
		{name: "context cancelled",
			edit: func(o *EmailOptions, _ *mailcatch.Catcher) { o.URL = silentListener(t) },
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx
			},
			wantRetry: true, wantIs: context.Canceled},
		{name: "address does not parse",
			reminder:  func(r *Reminder) { r.EmailAddress = "jane.doe at example" },
			wantRetry: false, wantIs: ErrInvalidReminder},
		{name: "no link", reminder: func(r *Reminder) { r.Link = "" }, wantRetry: false, wantIs: ErrInvalidReminder, uncounted: true},
		{name: "template error",
			edit:      func(o *EmailOptions, _ *mailcatch.Catcher) { o.TemplatesDir = brokenTemplates },
			wantRetry: false, wantText: "NoSuchField"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mailcatch.Start(t, tt.opts)
			c.FailNext(tt.failNext)
			reg := prometheus.NewRegistry()
			ch := newTestEmail(t, c, func(o *EmailOptions) {
				o.Registerer = reg
				if tt.edit != nil {
					tt.edit(o, c)
				}
			})
			r := testReminder(NewStage(time.Hour), "Jane")
			if tt.reminder != nil {
				tt.reminder(r)
			}
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			retry, err := ch.Send(ctx, r)
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			t.Logf("error: %v", err)
			if retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tt.wantRetry)
			}
			if se, ok := errors.AsType[*SMTPError](err); ok != (tt.wantCode != 0) || (ok && se.Code != tt.wantCode) {
				t.Errorf("SMTPError = %v, want code %d", se, tt.wantCode)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error does not wrap %v", tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error lacks %q", tt.wantText)
			}
			if !strings.HasPrefix(err.Error(), "send ") {
				t.Errorf("error %q does not start with the verb", err)
			}
			assertNoSecrets(t, err, "wrong-s3cret", "right")
			label := "false"
			if tt.wantRetry {
				label = "true"
			}
			want := 1.0
			if tt.uncounted {
				want = 0
			}
			if v := testutil.ToFloat64(ch.metrics.errors.WithLabelValues("email", label)); v != want {
				t.Errorf("errors_total{retry=%q} = %v, want %v", label, v, want)
			}
			if n := len(c.Messages()); n != tt.caught {
				t.Errorf("caught %d messages, want %d", n, tt.caught)
			}
		})
	}
}

func TestEmailRecoversAfterOutage(t *testing.T) {
	c := mailcatch.Start(t, mailcatch.Options{})
	c.FailNext(1)
	ch := newTestEmail(t, c, nil)
	r := testReminder(NewStage(6*time.Hour), "Jane")
	if retry, err := ch.Send(t.Context(), r); !retry || err == nil {
		t.Fatalf("first Send = %v, %v; want a retryable error", retry, err)
	}
	if retry, err := ch.Send(t.Context(), r); retry || err != nil {
		t.Fatalf("second Send = %v, %v; want success", retry, err)
	}
}

func TestEmailTemplateOverride(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"subject.txt.tmpl":      "Grüße{{with .NameFirst}}, {{.}}{{end}}: noch {{.TimeLeft}}\n",
		"subject.1h.txt.tmpl":   "Letzte Erinnerung\r\nBcc: injected@example.com",
		"reminder.6h.txt.tmpl":  "Stage {{.Stage}} for {{.ReferenceID}}: {{.Link}}\n",
		"reminder.html.tmpl":    `<p>{{.Subject}} <a href="{{.Link}}">go</a></p>`,
		"not-a-template.txt":    "ignored",
		"reminder.9h.html.tmpl": "{{.Link}}", // a stage that never comes
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := mailcatch.Start(t, mailcatch.Options{})
	ch := newTestEmail(t, c, func(o *EmailOptions) { o.TemplatesDir = dir })
	for _, stage := range []Stage{NewStage(6 * time.Hour), NewStage(time.Hour)} {
		if _, err := ch.Send(t.Context(), testReminder(stage, "Jörg")); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := c.WaitFor(2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	six, one := msgs[0], msgs[1]
	if want := "Grüße, Jörg: noch about 6 hours"; six.Subject != want {
		t.Errorf("6h Subject = %q, want %q", six.Subject, want)
	}
	if !strings.Contains(string(six.Raw), "Subject: =?utf-8?q?") {
		t.Errorf("non-ASCII subject is not RFC 2047 Q-encoded:\n%s", six.Raw)
	}
	if want := "Stage 6h for user-123: " + testLink + "\n"; six.TextBody != want {
		t.Errorf("6h TextBody = %q, want %q", six.TextBody, want)
	}
	if want := `<p>Grüße, Jörg: noch about 6 hours <a href="https://resume.example.com/r/tok_SECRET?x=1&amp;y=%3c2%3e">go</a></p>`; six.HTMLBody != want {
		t.Errorf("6h HTMLBody = %q, want %q", six.HTMLBody, want)
	}
	if want := "Letzte Erinnerung Bcc: injected@example.com"; one.Subject != want {
		t.Errorf("1h Subject = %q, want %q (line breaks flattened)", one.Subject, want)
	}
	if one.Header.Get("Bcc") != "" {
		t.Error("a subject template injected a header")
	}
	if !strings.HasPrefix(one.TextBody, "Hi Jörg,\n") {
		t.Errorf("1h TextBody does not come from the embedded template: %q", one.TextBody)
	}

	if err := os.WriteFile(filepath.Join(dir, "reminder.txt.tmpl"), []byte("{{if}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewEmailChannel(EmailOptions{URL: c.URL(), From: "a@b.example", TemplatesDir: dir}); err == nil ||
		!strings.Contains(err.Error(), "reminder.txt.tmpl") {
		t.Errorf("NewEmailChannel with a broken template = %v, want an error naming the file", err)
	}
}

func TestNewEmailChannelErrors(t *testing.T) {
	tests := []struct {
		name string
		opts EmailOptions
		want string
	}{
		{"no url", EmailOptions{From: "a@b.example"}, "scheme"},
		{"other scheme", EmailOptions{URL: "http://mail.example", From: "a@b.example"}, "scheme"},
		{"bad port keeps the password out", EmailOptions{URL: "smtp://user:hunter2@mail.example:port", From: "a@b.example"}, "parse smtp url"},
		{"query", EmailOptions{URL: "smtp://mail.example?tls=1", From: "a@b.example"}, "query"},
		{"user without password", EmailOptions{URL: "smtp://user@mail.example", From: "a@b.example"}, "no password"},
		{"no from", EmailOptions{URL: "smtp://mail.example"}, "from address"},
		{"from without domain", EmailOptions{URL: "smtp://mail.example", From: "Acme <verify>"}, "from address"},
		{"missing templates dir", EmailOptions{URL: "smtp://mail.example", From: "a@b.example", TemplatesDir: "/nonexistent"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewEmailChannel(tt.opts)
			if err == nil {
				t.Fatal("NewEmailChannel succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}
