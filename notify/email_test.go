package notify

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resumer/resumer/internal/mailcatch"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const (
	testAddress = "jane.doe+resume@example.org"
	// testLink has & and < to prove the HTML escaping; the token stands for a session token.
	testLink = "https://resume.example.com/r/tok_SECRET?x=1&y=<2>"
)

var (
	testExpiry = time.Date(2026, 1, 6, 10, 0, 0, 0, time.UTC)
	testClock  = testExpiry.Add(-6 * time.Hour)
)

func testReminder(stage Stage, name string) *Reminder {
	return &Reminder{
		InquiryID:    "inq_3dKHQzPFrBbBSDaxgsnDJFrU",
		ReferenceID:  "user-123",
		Stage:        stage,
		ExpiresAt:    testExpiry,
		Now:          testExpiry.Add(-stage.Before),
		EmailAddress: testAddress,
		NameFirst:    name,
		Link:         testLink,
	}
}

// newTestEmail builds an e-mail channel for c with a fixed clock; edit changes the options.
func newTestEmail(t *testing.T, c *mailcatch.Catcher, edit func(*EmailOptions)) *EmailChannel {
	t.Helper()
	opts := EmailOptions{
		From:    "Acme Verification <verify@acme.example>",
		Now:     func() time.Time { return testClock },
		Timeout: 10 * time.Second,
	}
	if c != nil {
		opts.URL = c.URL()
	} else {
		opts.URL = "smtp://127.0.0.1:1"
	}
	if edit != nil {
		edit(&opts)
	}
	ch, err := NewEmailChannel(opts)
	if err != nil {
		t.Fatalf("NewEmailChannel: %v", err)
	}
	return ch
}

// checkGolden compares got with testdata/golden/name, or rewrites the file with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestEmailGolden(t *testing.T) {
	ch := newTestEmail(t, nil, nil)
	var subjects strings.Builder
	for _, stage := range []Stage{NewStage(6 * time.Hour), NewStage(time.Hour)} {
		for _, name := range []string{"Jane", ""} {
			id := "reminder-" + stage.Name + "-noname"
			if name != "" {
				id = "reminder-" + stage.Name + "-name"
			}
			t.Run(id, func(t *testing.T) {
				r := testReminder(stage, name)
				got, _, err := ch.render(r, testClock)
				if err != nil {
					t.Fatal(err)
				}
				subjects.WriteString(id + ": " + got.Subject + "\n")
				checkGolden(t, id+".txt", got.Text)
				checkGolden(t, id+".html", got.HTML)

				greeting := "Hi,"
				if name != "" {
					greeting = "Hi " + name + ","
				}
				if !strings.HasPrefix(got.Text, greeting+"\n") {
					t.Errorf("text does not start with %q", greeting)
				}
				if !strings.Contains(got.Text, testLink) {
					t.Error("text body lacks the link as it is")
				}
				if strings.Contains(got.HTML, testLink) || strings.Contains(got.HTML, "<2>") {
					t.Error("html body has the link unescaped")
				}
				for _, want := range []string{
					`href="https://resume.example.com/r/tok_SECRET?x=1&amp;y=%3c2%3e"`,
					`>https://resume.example.com/r/tok_SECRET?x=1&amp;y=&lt;2&gt;</a>`,
				} {
					if !strings.Contains(got.HTML, want) {
						t.Errorf("html body lacks %s", want)
					}
				}
			})
		}
	}
	checkGolden(t, "subjects.txt", subjects.String())
}

func TestEmailSendThroughCatcher(t *testing.T) {
	tests := []struct {
		name string
		opts mailcatch.Options
		edit func(*EmailOptions, *mailcatch.Catcher)
	}{
		{name: "plain", opts: mailcatch.Options{}},
		{name: "auth plain", opts: mailcatch.Options{Username: "resumer", Password: "pa ss:w@rd"}},
		{name: "password from option", opts: mailcatch.Options{Username: "resumer", Password: "from-file"},
			edit: func(o *EmailOptions, c *mailcatch.Catcher) {
				o.URL = strings.Replace(c.URL(), ":from-file@", ":wrong@", 1)
				o.Password = "from-file"
			}},
		{name: "starttls verified", opts: mailcatch.Options{STARTTLS: true},
			edit: func(o *EmailOptions, c *mailcatch.Catcher) { o.TLSConfig = c.ClientTLSConfig(); o.RequireTLS = true }},
		{name: "starttls and auth", opts: mailcatch.Options{STARTTLS: true, Username: "u", Password: "p"},
			edit: func(o *EmailOptions, c *mailcatch.Catcher) {
				o.TLSConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the catcher's self-signed cert
			}},
		{name: "implicit tls", opts: mailcatch.Options{ImplicitTLS: true},
			edit: func(o *EmailOptions, c *mailcatch.Catcher) { o.TLSConfig = c.ClientTLSConfig() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mailcatch.Start(t, tt.opts)
			ch := newTestEmail(t, c, func(o *EmailOptions) {
				if tt.edit != nil {
					tt.edit(o, c)
				}
			})
			r := testReminder(NewStage(6*time.Hour), "Zoë")
			retry, err := ch.Send(t.Context(), r)
			if err != nil || retry {
				t.Fatalf("Send = %v, %v; want false, nil", retry, err)
			}
			msgs, err := c.WaitFor(1, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			m := msgs[0]
			want, _, err := ch.render(r, testClock)
			if err != nil {
				t.Fatal(err)
			}
			if m.ParseErr != "" {
				t.Errorf("ParseErr = %s", m.ParseErr)
			}
			if m.From != "verify@acme.example" || len(m.To) != 1 || m.To[0] != testAddress {
				t.Errorf("envelope %q -> %q", m.From, m.To)
			}
			if m.Subject != want.Subject {
				t.Errorf("Subject = %q, want %q", m.Subject, want.Subject)
			}
			if m.MessageID != MessageID(r.InquiryID, "6h", "acme.example") {
				t.Errorf("MessageID = %q", m.MessageID)
			}
			if m.TextBody != want.Text {
				t.Errorf("TextBody = %q\nwant %q", m.TextBody, want.Text)
			}
			if m.HTMLBody != want.HTML {
				t.Errorf("HTMLBody = %q\nwant %q", m.HTMLBody, want.HTML)
			}
			h := m.Header
			for k, v := range map[string]string{
				"Date":           testClock.Format(time.RFC1123Z),
				"From":           `"Acme Verification" <verify@acme.example>`,
				"To":             "<" + testAddress + ">",
				"MIME-Version":   "1.0",
				"Auto-Submitted": "auto-generated",
			} {
				if got := h.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if ct := h.Get("Content-Type"); !regexp.MustCompile(`^multipart/alternative; boundary=[0-9a-f]{30,}$`).MatchString(ct) {
				t.Errorf("Content-Type = %q", ct)
			}
			if n := bytes.Count(m.Raw, []byte("Content-Transfer-Encoding: quoted-printable\r\n")); n != 2 {
				t.Errorf("%d quoted-printable parts, want 2", n)
			}
			for i, line := range strings.Split(string(m.Raw), "\r\n") {
				if len(line) > 78 {
					t.Errorf("raw line %d has %d characters: %q", i, len(line), line)
				}
			}
		})
	}
}

func TestEmailMessageIDIsDeterministic(t *testing.T) {
	c := mailcatch.Start(t, mailcatch.Options{})
	ch := newTestEmail(t, c, nil)
	for _, stage := range []Stage{NewStage(6 * time.Hour), NewStage(6 * time.Hour), NewStage(time.Hour)} {
		if _, err := ch.Send(t.Context(), testReminder(stage, "")); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := c.WaitFor(3, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^<resumer\.[0-9a-f]{32}@acme\.example>$`).MatchString(msgs[0].MessageID) {
		t.Errorf("MessageID %q has the wrong shape", msgs[0].MessageID)
	}
	if msgs[0].MessageID != msgs[1].MessageID {
		t.Errorf("a resend has another Message-ID: %s, %s", msgs[0].MessageID, msgs[1].MessageID)
	}
	if msgs[0].MessageID == msgs[2].MessageID {
		t.Errorf("two stages share Message-ID %s", msgs[0].MessageID)
	}
	if MessageID("inq_a", "6h", "x.example") == MessageID("inq_b", "6h", "x.example") {
		t.Error("two inquiries share a Message-ID")
	}
}

func TestEmailNoContact(t *testing.T) {
	c := mailcatch.Start(t, mailcatch.Options{})
	reg := prometheus.NewRegistry()
	ch := newTestEmail(t, c, func(o *EmailOptions) { o.Registerer = reg })
	r := testReminder(NewStage(6*time.Hour), "Jane")
	r.EmailAddress = " "
	retry, err := ch.Send(t.Context(), r)
	if !errors.Is(err, ErrNoContact) || retry {
		t.Fatalf("Send = %v, %v; want false, ErrNoContact", retry, err)
	}
	if n := len(c.Messages()); n != 0 {
		t.Errorf("caught %d messages, want 0", n)
	}
	if n := testutil.CollectAndCount(reg, "resumer_notify_channel_duration_seconds"); n != 1 {
		t.Errorf("%d duration series, want 1", n)
	}
	if v := testutil.ToFloat64(ch.metrics.errors.WithLabelValues("email", "false")); v != 0 {
		t.Errorf("no_contact counted as a channel error (%v)", v)
	}
}
