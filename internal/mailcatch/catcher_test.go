package mailcatch

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

const rawMessage = "From: Sender <sender@example.com>\r\n" +
	"To: <jane@example.com>\r\n" +
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
	"Message-ID: <abc@example.com>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=\"b1\"\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Hi J=C3=B6rg,\r\n" +
	"a long line that is soft-=\r\n" +
	"broken: https://x.example/?a=3D1&b=3D2\r\n" +
	"--b1\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+SGkgPGI+SsO2cmc8L2I+PC9w\r\n" +
	"Pg==\r\n" +
	"--b1--\r\n"

// send submits rawMessage with net/smtp, optionally with STARTTLS and AUTH PLAIN.
func send(t *testing.T, c *Catcher, tlsConfig *tls.Config, auth smtp.Auth, to string) error {
	t.Helper()
	var conn net.Conn
	var err error
	if c.opts.ImplicitTLS {
		conn, err = tls.Dial("tcp", c.Addr(), tlsConfig)
	} else {
		conn, err = net.Dial("tcp", c.Addr())
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	cl, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	defer cl.Close()
	if tlsConfig != nil && !c.opts.ImplicitTLS {
		if err := cl.StartTLS(tlsConfig); err != nil {
			return err
		}
	}
	if auth != nil {
		if err := cl.Auth(auth); err != nil {
			return err
		}
	}
	if err := cl.Mail("sender@example.com"); err != nil {
		return err
	}
	if err := cl.Rcpt(to); err != nil {
		return err
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(rawMessage)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return cl.Quit()
}

func TestCatcherAcceptsAndParses(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		tls  bool
		auth bool
	}{
		{name: "plain", opts: Options{}},
		{name: "auth", opts: Options{Username: "u", Password: "p"}, auth: true},
		{name: "starttls", opts: Options{STARTTLS: true}, tls: true},
		{name: "starttls and auth", opts: Options{STARTTLS: true, Username: "u", Password: "p"}, tls: true, auth: true},
		{name: "implicit tls", opts: Options{ImplicitTLS: true}, tls: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Start(t, tt.opts)
			var cfg *tls.Config
			if tt.tls {
				cfg = c.ClientTLSConfig()
				cfg.ServerName = "127.0.0.1"
			}
			var auth smtp.Auth
			if tt.auth {
				auth = smtp.PlainAuth("", "u", "p", "127.0.0.1")
			}
			if err := send(t, c, cfg, auth, "jane@example.com"); err != nil {
				t.Fatalf("send: %v", err)
			}
			msgs, err := c.WaitFor(1, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			m := msgs[0]
			if m.ParseErr != "" {
				t.Errorf("ParseErr = %q", m.ParseErr)
			}
			if m.From != "sender@example.com" || len(m.To) != 1 || m.To[0] != "jane@example.com" {
				t.Errorf("envelope = %q -> %q", m.From, m.To)
			}
			if m.Subject != "Grüße" {
				t.Errorf("Subject = %q", m.Subject)
			}
			if m.MessageID != "<abc@example.com>" {
				t.Errorf("MessageID = %q", m.MessageID)
			}
			if want := "Hi Jörg,\na long line that is soft-broken: https://x.example/?a=1&b=2"; m.TextBody != want {
				t.Errorf("TextBody = %q, want %q", m.TextBody, want)
			}
			if want := "<p>Hi <b>Jörg</b></p>"; m.HTMLBody != want {
				t.Errorf("HTMLBody = %q, want %q", m.HTMLBody, want)
			}
			if string(m.Raw) != rawMessage {
				t.Errorf("Raw differs from what was sent")
			}
			wantScheme := "smtp://"
			if tt.opts.ImplicitTLS {
				wantScheme = "smtps://"
			}
			if !strings.HasPrefix(c.URL(), wantScheme) {
				t.Errorf("URL = %q, want scheme %s", c.URL(), wantScheme)
			}
		})
	}
}

func TestCatcherRequiresAuth(t *testing.T) {
	c := Start(t, Options{Username: "u", Password: "p"})
	err := send(t, c, nil, nil, "jane@example.com")
	if tp, ok := errors.AsType[*textproto.Error](err); !ok || tp.Code != 502 {
		t.Fatalf("send without AUTH: %v, want 502 (go-smtp's ErrAuthRequired)", err)
	}
	err = send(t, c, nil, smtp.PlainAuth("", "u", "wrong", "127.0.0.1"), "jane@example.com")
	if tp, ok := errors.AsType[*textproto.Error](err); !ok || tp.Code != 535 {
		t.Fatalf("send with a wrong password: %v, want 535", err)
	}
	if n := len(c.Messages()); n != 0 {
		t.Fatalf("caught %d messages, want 0", n)
	}
	if want := "smtp://u:p@" + c.Addr(); c.URL() != want {
		t.Errorf("URL = %q, want %q", c.URL(), want)
	}
}

func TestCatcherRejectAndFail(t *testing.T) {
	c := Start(t, Options{RejectRecipient: func(a string) bool { return strings.HasPrefix(a, "bounce@") }})
	err := send(t, c, nil, nil, "bounce@example.com")
	if tp, ok := errors.AsType[*textproto.Error](err); !ok || tp.Code != 550 || !strings.Contains(tp.Msg, "bounce@example.com") {
		t.Fatalf("rejected recipient: %v, want 550 echoing the address", err)
	}
	c.FailNext(2)
	for i := range 2 {
		err := send(t, c, nil, nil, "jane@example.com")
		if tp, ok := errors.AsType[*textproto.Error](err); !ok || tp.Code != 451 {
			t.Fatalf("attempt %d during outage: %v, want 451", i+1, err)
		}
	}
	if err := send(t, c, nil, nil, "jane@example.com"); err != nil {
		t.Fatalf("send after outage: %v", err)
	}
	if n := len(c.Messages()); n != 1 {
		t.Fatalf("caught %d messages, want 1", n)
	}
	c.Reset()
	if n := len(c.Messages()); n != 0 {
		t.Fatalf("caught %d messages after Reset, want 0", n)
	}
}

func TestCatcherKeepsMaxMessages(t *testing.T) {
	c := Start(t, Options{MaxMessages: 2})
	for range 3 {
		if err := send(t, c, nil, nil, "jane@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.Messages()); n != 2 {
		t.Fatalf("kept %d messages, want 2", n)
	}
}

func TestWaitForTimesOut(t *testing.T) {
	c := Start(t, Options{})
	msgs, err := c.WaitFor(1, 50*time.Millisecond)
	if err == nil || len(msgs) != 0 {
		t.Fatalf("WaitFor = %d messages, %v; want a timeout", len(msgs), err)
	}
}

func TestListenAndServeStopsWithContext(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.ListenAndServe(ctx, "127.0.0.1:0") }()
	deadline := time.Now().Add(5 * time.Second)
	for c.Addr() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := send(t, c, nil, nil, "jane@example.com"); err != nil {
		t.Fatalf("send: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ListenAndServe = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
}

func TestHandlerEscapesMessages(t *testing.T) {
	c := Start(t, Options{})
	c.store(parseMessage("a@example.com", []string{"b@example.com"}, []byte(
		"Subject: <script>alert(1)</script>\r\nContent-Type: text/html\r\n\r\n"+
			`<p onclick="x()">Hi &amp; <a href="https://x.example/?a=1&amp;b=2">go</a></p>`), time.Now()))

	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dev/mail", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;",
		`sandbox="allow-popups allow-popups-to-escape-sandbox"`,
		// The message's HTML is an attribute value: quotes and ampersands escaped once more.
		`srcdoc="&lt;p onclick=&#34;x()&#34;&gt;Hi &amp;amp; &lt;a href=&#34;https://x.example/?a=1&amp;amp;b=2&#34;&gt;go&lt;/a&gt;&lt;/p&gt;"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("page contains an unescaped script tag")
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}

	rec = httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/dev/mail", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST status = %d, want 405", rec.Code)
	}
}
