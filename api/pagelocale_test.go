package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/brand"
	"github.com/resumer/resumer/persona/personatest"
)

// TestPagesSpeakTheBrandsLanguage: a brand whose locale is es or de gets its /r/ pages in
// that language (heading, button, fresh-link offer, support line, lang attribute), and
// pressing the Spanish button works like the English one.
func TestPagesSpeakTheBrandsLanguage(t *testing.T) {
	brands, err := brand.New([]brand.Brand{
		{ID: "acme", Name: "Acme", Locale: "es", SupportEmail: "ayuda@acme.example", SupportURL: "https://acme.example/ayuda",
			FreshLinkURL: "https://acme.example/nuevo", ReferencePrefixes: []string{"acme"}},
		{ID: "globex", Name: "Globex", Locale: "de", ReferencePrefixes: []string{"globex"}},
	}, "acme", pageLocales)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, &envConfig{api: func(o *Options) { o.Brands = brands; o.SingleUseLinks = true }})
	es := e.create(personatest.InquiryParams{ReferenceID: "acme-1"})
	de := e.create(personatest.InquiryParams{ReferenceID: "globex-1"})
	esLink := e.link(es, time.Hour)

	for _, tc := range []struct {
		name  string
		r     response
		page  string
		words []string
	}{
		{"spanish continue", e.open(esLink), "continue", []string{`lang="es"`, "Continuar la verificación", "¿Preguntas?", "Contactar con soporte", " o "}},
		{"german continue", e.open(e.link(de, time.Hour)), "continue", []string{`lang="de"`, "Verifizierung fortsetzen"}},
		{"invalid link in the default brand's language", e.open("not-a-link"), "invalid_link", []string{`lang="es"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc := "es"
			if strings.Contains(tc.name, "german") {
				loc = "de"
			}
			heading := pageTexts[loc][tc.page][0]
			if !strings.Contains(string(tc.r.body), "<h1>"+heading+"</h1>") {
				t.Errorf("no %q heading: %s", heading, tc.r.body)
			}
			for _, w := range tc.words {
				if !strings.Contains(string(tc.r.body), w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
	if r := e.follow(esLink); r.status != http.StatusSeeOther {
		t.Fatalf("pressing the spanish button: %d", r.status)
	}
	used := e.open(esLink)
	for _, w := range []string{pageTexts["es"]["link_used"][0], "Enviarme un correo nuevo", "https://acme.example/nuevo"} {
		if !strings.Contains(string(used.body), w) {
			t.Errorf("used page lacks %q", w)
		}
	}
}

// TestEveryPageIsTranslated: each page has its words in each language.
func TestEveryPageIsTranslated(t *testing.T) {
	pages := []page{pageContinue, pageFormExpired, pageLinkUsed, pageInvalidLink, pageLinkExpired, pageFinished,
		pageInquiryExpired, pageTooManyAttempts, pageUnavailable}
	for _, l := range pageLocales {
		if _, ok := wordsByLocale[l]; !ok {
			t.Errorf("no words in %s", l)
		}
		if l == "en" {
			continue
		}
		for _, p := range pages {
			if t3, ok := pageTexts[l][p.name]; !ok || t3[0] == "" || t3[1] == "" || t3[2] == "" {
				t.Errorf("page %s has no %s words", p.name, l)
			}
		}
	}
}
