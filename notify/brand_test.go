package notify

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/brand"
	"github.com/resumer/resumer/internal/mailcatch"
	"github.com/resumer/resumer/persona/personatest"
)

// testBrands are two customers of one deployment: acme (by template, its own sender, logo,
// support and footer) and globex (by reference prefix, German by default, its own subject
// template for Spanish).
func testBrands(t *testing.T) *brand.Set {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "es"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "es", "subject.txt.tmpl"), []byte("Globex te espera ({{.TimeLeft}})\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := brand.New([]brand.Brand{
		{ID: "acme", Name: "Acme Bank", LogoURL: "https://acme.example/logo.png", Color: "#0b5394",
			SupportEmail: "help@acme.example", SupportURL: "https://acme.example/help",
			Footer: "Acme Bank plc, 1 Main Street, Springfield", Sender: "Acme Bank <verify@acme.example>",
			Templates: []string{"itmpl_acme"}},
		{ID: "globex", Name: "Globex", Locale: "de", ReferencePrefixes: []string{"globex"}, TemplatesDir: dir},
	}, "acme", Locales())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEmailBrandsAndLocales sends reminders for inquiries of both brands and checks who each
// speaks for (From, envelope, Message-ID domain, subject, logo with alt text, support,
// footer) and in which language: the inquiry's locale field when it names a locale, else
// the brand's default.
func TestEmailBrandsAndLocales(t *testing.T) {
	c := mailcatch.Start(t, mailcatch.Options{})
	ch := newTestEmail(t, c, func(o *EmailOptions) { o.Brands = testBrands(t) })
	stage := NewStage(6 * time.Hour)
	type want struct {
		from, envelope, subject string
		body                    []string
	}
	for _, tc := range []struct {
		name     string
		template string
		ref      string
		locale   string
		want     want
	}{
		{"acme by template", "itmpl_acme", "globex-1", "", want{
			`"Acme Bank" <verify@acme.example>`, "verify@acme.example",
			"Acme Bank: finish your identity verification (about 6 hours left)",
			[]string{`alt="Acme Bank"`, "Acme Bank plc, 1 Main Street, Springfield", "mailto:help@acme.example",
				"Acme Bank asked you to verify your identity", "background-color:#0b5394", ">Continue verification</a>"}}},
		{"acme in spanish", "itmpl_acme", "", "es-MX", want{
			`"Acme Bank" <verify@acme.example>`, "verify@acme.example",
			"Acme Bank: termina tu verificación de identidad (quedan aproximadamente 6 horas)",
			[]string{`lang="es"`, "Acme Bank te pidió", ">Continuar la verificación</a>", "¿Preguntas?"}}},
		{"globex by prefix, german default", "itmpl_other", "globex-7", "", want{
			`"Acme Verification" <verify@acme.example>`, "verify@acme.example",
			"Globex: Bitte schließen Sie Ihre Identitätsprüfung ab (läuft in etwa 6 Stunden ab)",
			[]string{`lang="de"`, "Globex hat Sie gebeten", ">Verifizierung fortsetzen</a>", "in <strong>etwa 6 Stunden</strong> ab"}}},
		{"globex with an unknown locale keeps german", "", "globex-7", "fr", want{
			`"Acme Verification" <verify@acme.example>`, "verify@acme.example",
			"Globex: Bitte schließen Sie Ihre Identitätsprüfung ab (läuft in etwa 6 Stunden ab)", nil}},
		{"globex own spanish subject", "", "globex-7", "AR", want{
			`"Acme Verification" <verify@acme.example>`, "verify@acme.example",
			"Globex te espera (aproximadamente 6 horas)", []string{"Globex te pidió"}}},
		{"default brand", "", "initech-1", "", want{
			`"Acme Bank" <verify@acme.example>`, "verify@acme.example",
			"Acme Bank: finish your identity verification (about 6 hours left)", nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.Reset()
			r := testReminder(stage, "Ana")
			r.TemplateID, r.ReferenceID, r.Locale = tc.template, tc.ref, tc.locale
			if _, err := ch.Send(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			msgs, err := c.WaitFor(1, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			m := msgs[0]
			if got := m.Header.Get("From"); got != tc.want.from {
				t.Errorf("From %q, want %q", got, tc.want.from)
			}
			if m.From != tc.want.envelope {
				t.Errorf("envelope from %q, want %q", m.From, tc.want.envelope)
			}
			if !strings.HasSuffix(m.MessageID, "@"+strings.SplitN(tc.want.envelope, "@", 2)[1]+">") {
				t.Errorf("Message-ID %s not in the sender's domain", m.MessageID)
			}
			if m.Subject != tc.want.subject {
				t.Errorf("Subject %q\nwant    %q", m.Subject, tc.want.subject)
			}
			for _, s := range tc.want.body {
				if !strings.Contains(m.HTMLBody, s) {
					t.Errorf("HTML lacks %q", s)
				}
			}
			if !strings.Contains(m.TextBody, testLink) {
				t.Error("text lacks the link")
			}
		})
	}
}

func TestMatchLocale(t *testing.T) {
	for in, want := range map[string]string{"es": "es", "ES": "es", "de-AT": "de", "en_GB": "en", "MX": "es",
		"at": "de", " de ": "de", "fr": "", "": "", "pt-BR": "", "ch": ""} {
		if got := MatchLocale(in); got != want {
			t.Errorf("MatchLocale(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTemplateLayersAndLayout: a deployment-wide layout.html.tmpl reaches the embedded
// bodies; a locale subdirectory beats the top of the same directory; a brand's directory
// beats the deployment's; a broken brand template is refused at start-up, naming the brand.
func TestTemplateLayersAndLayout(t *testing.T) {
	global := t.TempDir()
	write := func(path, src string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(global, "layout.html.tmpl"), `{{define "layout"}}<main>{{template "button" .}} {{.Link}}</main>{{end}}`)
	write(filepath.Join(global, "subject.txt.tmpl"), "top {{.Locale}}")
	write(filepath.Join(global, "de", "subject.txt.tmpl"), "unten {{.Locale}}")
	brandDir := t.TempDir()
	write(filepath.Join(brandDir, "subject.txt.tmpl"), "brand {{.Brand.Name}}")
	brands, err := brand.New([]brand.Brand{{ID: "own", Name: "Own", TemplatesDir: brandDir, ReferencePrefixes: []string{"own"}},
		{ID: "plain", Name: "Plain"}}, "plain", Locales())
	if err != nil {
		t.Fatal(err)
	}
	ch := newTestEmail(t, nil, func(o *EmailOptions) { o.TemplatesDir = global; o.Brands = brands })
	for _, tc := range []struct{ ref, locale, subject, html string }{
		{"x", "en", "top en", "<main>Continue verification https://resume.example.com/r/tok_SECRET?x=1&amp;y=&lt;2&gt;</main>"},
		{"x", "de", "unten de", "<main>Verifizierung fortsetzen"},
		{"own-1", "de", "brand Own", "<main>Verifizierung fortsetzen"},
	} {
		r := testReminder(NewStage(6*time.Hour), "")
		r.ReferenceID, r.Locale = tc.ref, tc.locale
		got, _, err := ch.render(r, testClock)
		if err != nil {
			t.Fatal(err)
		}
		if got.Subject != tc.subject || !strings.HasPrefix(got.HTML, tc.html) {
			t.Errorf("%s/%s: subject %q html %q", tc.ref, tc.locale, got.Subject, got.HTML)
		}
	}
	write(filepath.Join(brandDir, "es", "reminder.txt.tmpl"), "{{if}}")
	_, err = NewEmailChannel(EmailOptions{URL: "smtp://127.0.0.1:1", From: "a@b.example", Brands: brands})
	if err == nil || !strings.Contains(err.Error(), "brand own") || !strings.Contains(err.Error(), "reminder.txt.tmpl") {
		t.Errorf("a broken brand template: %v, want an error naming the brand and the file", err)
	}
}

// TestSchedulerSendsBrandedReminders: the scheduler hands each reminder its inquiry's
// template id from the claim, so an inquiry of acme's template gets acme's e-mail (sender,
// name, footer) and one of another template the default brand's.
func TestSchedulerSendsBrandedReminders(t *testing.T) {
	e := newSchedEnv(t)
	brands, err := brand.New([]brand.Brand{
		{ID: "plain", Name: "Plain Co"},
		{ID: "acme", Name: "Acme Bank", Sender: "Acme Bank <verify@acme.example>", Footer: "Acme Bank plc, Springfield",
			Templates: []string{"itmpl_acme"}},
	}, "plain", Locales())
	if err != nil {
		t.Fatal(err)
	}
	email, err := NewEmailChannel(EmailOptions{URL: e.mail.URL(), From: "Plain <noreply@plain.example>", Now: e.clock.Now,
		Timeout: 10 * time.Second, Brands: brands})
	if err != nil {
		t.Fatal(err)
	}
	acme := e.pending(t, personatest.InquiryParams{TemplateID: "itmpl_acme", EmailAddress: "ana@example.com"})
	other := e.pending(t, personatest.InquiryParams{TemplateID: "itmpl_other", EmailAddress: "bo@example.com"})
	e.clock.Add(23 * time.Hour)
	e.sync(t)
	s := e.scheduler(t, nil, func(o *SchedulerOptions) { o.Channels = []Channel{email} })
	if n := sweep(t, s); n != 2 {
		t.Fatalf("sweep handled %d claims, want 2", n)
	}
	msgs := e.mail.Messages()
	if len(msgs) != 2 {
		t.Fatalf("caught %d e-mails", len(msgs))
	}
	for _, m := range msgs {
		switch m.MessageID {
		case MessageID(acme.ID, "1h", "acme.example"):
			if m.From != "verify@acme.example" || !strings.HasPrefix(m.Subject, "Acme Bank: ") ||
				!strings.Contains(m.TextBody, "Acme Bank plc, Springfield") {
				t.Errorf("acme's reminder: from %s subject %q", m.From, m.Subject)
			}
		case MessageID(other.ID, "1h", "plain.example"):
			if m.From != "noreply@plain.example" || !strings.HasPrefix(m.Subject, "Plain Co: ") {
				t.Errorf("the other reminder: from %s subject %q", m.From, m.Subject)
			}
		default:
			t.Errorf("unexpected message %s", m.MessageID)
		}
	}
}

// TestEveryLocaleHasEveryTemplate: the built-in sets of all locales have the same files, so
// no language silently falls back to English.
func TestEveryLocaleHasEveryTemplate(t *testing.T) {
	files := func(locale string) []string {
		names, err := fs.Glob(embeddedTemplates, "templates/"+locale+"/*.tmpl")
		if err != nil || len(names) == 0 {
			t.Fatalf("templates/%s: %v", locale, err)
		}
		for i := range names {
			names[i] = path.Base(names[i])
		}
		return names
	}
	en := files("en")
	for _, l := range Locales() {
		if got := files(l); !slices.Equal(got, en) {
			t.Errorf("templates/%s has %v, templates/en %v", l, got, en)
		}
	}
}

// TestSchedulerWritesInTheInquiryLocale: with the locale field configured, the user's
// language travels from the webhook event through the record and the claim into the e-mail;
// an inquiry without it gets its brand's default.
func TestSchedulerWritesInTheInquiryLocale(t *testing.T) {
	e := newSchedEnv(t)
	e.localeField = "locale"
	brands, err := brand.New([]brand.Brand{{ID: "globex", Name: "Globex", Locale: "de"}}, "", Locales())
	if err != nil {
		t.Fatal(err)
	}
	email, err := NewEmailChannel(EmailOptions{URL: e.mail.URL(), From: schedFrom, Now: e.clock.Now,
		Timeout: 10 * time.Second, Brands: brands})
	if err != nil {
		t.Fatal(err)
	}
	es := e.pending(t, personatest.InquiryParams{EmailAddress: "ana@example.com", Locale: "es-AR"})
	de := e.pending(t, personatest.InquiryParams{EmailAddress: "jo@example.com"})
	e.clock.Add(23 * time.Hour)
	e.sync(t)
	if got := e.inquiry(t, es.ID).Locale; got != "es-AR" {
		t.Fatalf("stored locale %q", got)
	}
	s := e.scheduler(t, nil, func(o *SchedulerOptions) { o.Channels = []Channel{email} })
	if n := sweep(t, s); n != 2 {
		t.Fatalf("sweep handled %d claims, want 2", n)
	}
	for _, m := range e.mail.Messages() {
		switch m.MessageID {
		case MessageID(es.ID, "1h", "acme.example"):
			if !strings.HasPrefix(m.Subject, "Globex: último recordatorio") || !strings.HasPrefix(m.TextBody, "Hola:") {
				t.Errorf("spanish reminder: %q / %q", m.Subject, m.TextBody)
			}
		case MessageID(de.ID, "1h", "acme.example"):
			if !strings.HasPrefix(m.Subject, "Globex: Letzte Erinnerung") {
				t.Errorf("german (brand default) reminder: %q", m.Subject)
			}
		default:
			t.Errorf("unexpected message %s", m.MessageID)
		}
	}
}
