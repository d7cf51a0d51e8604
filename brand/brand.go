package brand

import (
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Brand is who a reminder and the /r/ pages speak for: the company the user knows. Every
// field but ID and Name is optional; an empty one leaves its part out (no logo, no support
// line, ...). The fields are shown to users, so none may hold a secret.
type Brand struct {
	// ID names the brand in the brands file and in logs; [a-z0-9_-], 1 to 64 characters.
	ID string `json:"id" yaml:"id"`
	// Name is the company name shown in the subject, the body, the footer and the /r/ pages.
	Name string `json:"name" yaml:"name"`
	// LogoURL is an absolute https (or http) URL of the logo image, shown with the Name as
	// its alt text.
	LogoURL string `json:"logo_url" yaml:"logo_url"`
	// Color is the primary colour of buttons and accents, "#rrggbb"; DefaultColor when
	// empty. It must be dark enough for white button text (a contrast ratio of at least 4.5).
	Color string `json:"color" yaml:"color"`
	// SupportEmail and SupportURL are where a user can ask for help.
	SupportEmail string `json:"support_email" yaml:"support_email"`
	SupportURL   string `json:"support_url" yaml:"support_url"`
	// Footer is the postal footer line of the e-mails ("Acme Ltd, 1 Main St, Springfield").
	Footer string `json:"footer" yaml:"footer"`
	// Sender is the e-mail From of this brand's reminders ("Acme <verify@acme.example>");
	// the channel's default sender when empty.
	Sender string `json:"sender" yaml:"sender"`
	// FreshLinkURL is where a user whose link is used up or expired asks for a fresh e-mail
	// (a page of the customer's own app that can send one); the /r/ pages point there.
	FreshLinkURL string `json:"fresh_link_url" yaml:"fresh_link_url"`
	// Locale is the brand's default locale ("en", "es", "de"); DefaultLocale when empty.
	Locale string `json:"locale" yaml:"locale"`
	// TemplatesDir, when set, is a directory of e-mail templates that replace the built-in
	// ones for this brand, file by file (see notify's templates).
	TemplatesDir string `json:"templates_dir" yaml:"templates_dir"`
	// Templates are the Persona inquiry template ids (itmpl_...) whose inquiries get this
	// brand.
	Templates []string `json:"templates" yaml:"templates"`
	// ReferencePrefixes select this brand for inquiries whose reference id is one of them or
	// continues one after a delimiter (- _ : / .), like the resume API's reference_prefix.
	ReferencePrefixes []string `json:"reference_prefixes" yaml:"reference_prefixes"`
}

// DefaultColor is the primary colour of a brand that names none: a blue with a contrast
// ratio of 6.1 against white.
const DefaultColor = "#1f5fbf"

// DefaultLocale is the locale of a brand that names none.
const DefaultLocale = "en"

var (
	idRE    = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	colorRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
)

// Validate reports the first field of b that cannot be used as a *FieldError naming it.
// locales are the locales a brand may choose (Locale must be one of them when set).
func (b *Brand) Validate(locales []string) error {
	switch {
	case !idRE.MatchString(b.ID):
		return fieldErr("id", "id %q: want 1 to 64 of a-z, 0-9, _ and -", b.ID)
	case strings.TrimSpace(b.Name) == "":
		return fieldErr("name", "name: required")
	case len(b.Name) > 100:
		return fieldErr("name", "name: longer than 100 bytes")
	case b.Color != "" && !colorRE.MatchString(b.Color):
		return fieldErr("color", "color %q: want #rrggbb", b.Color)
	case b.Color != "" && contrastWithWhite(b.Color) < 4.5:
		return fieldErr("color", "color %q: white text on it has a contrast ratio of %.1f, want at least 4.5", b.Color, contrastWithWhite(b.Color))
	}
	for _, u := range []struct{ name, v string }{{"logo_url", b.LogoURL}, {"support_url", b.SupportURL}, {"fresh_link_url", b.FreshLinkURL}} {
		if u.v == "" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return fieldErr(u.name, "%s %q: want an absolute http(s) url", u.name, u.v)
		}
	}
	if b.SupportEmail != "" {
		if a, err := mail.ParseAddress(b.SupportEmail); err != nil || a.Name != "" {
			return fieldErr("support_email", "support_email %q: want a bare address like help@example.com", b.SupportEmail)
		}
	}
	if b.Sender != "" {
		if _, err := mail.ParseAddress(b.Sender); err != nil {
			return fieldErr("sender", "sender %q: %v", b.Sender, err)
		}
	}
	if b.Locale != "" && !slices.Contains(locales, b.Locale) {
		return fieldErr("locale", "locale %q: want one of %s", b.Locale, strings.Join(locales, ", "))
	}
	for _, p := range b.ReferencePrefixes {
		if p == "" {
			return fieldErr("reference_prefixes", "reference_prefixes: empty prefix")
		}
	}
	for _, t := range b.Templates {
		if !strings.HasPrefix(t, "itmpl_") {
			return fieldErr("templates", "templates: %q is not an inquiry template id (itmpl_...)", t)
		}
	}
	return nil
}

// PrimaryColor is Color, or DefaultColor when empty.
func (b *Brand) PrimaryColor() string {
	if b.Color == "" {
		return DefaultColor
	}
	return b.Color
}

// DefaultLocaleOr is Locale, or DefaultLocale when empty.
func (b *Brand) DefaultLocaleOr() string {
	if b.Locale == "" {
		return DefaultLocale
	}
	return b.Locale
}

// FieldError is a brand field that does not validate: Field is its name in the brands file.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}
