package notify

import "github.com/resumer/resumer/brand"

// Locales returns the locales the built-in e-mail templates come in: English, Spanish and
// German. A brand's default locale and an inquiry's locale field choose among them.
func Locales() []string { return []string{"en", "es", "de"} }

// MatchLocale returns the locale of Locales that s names, or "" when none does; see
// brand.MatchLocale.
func MatchLocale(s string) string { return brand.MatchLocale(s, Locales()) }

// brandAndLocale returns the brand brands pick for r (brand.Set.For: by its template id, else
// its reference id, else the default; brand.Neutral for a nil or empty set) and the locale a
// message to its user is written in: the locale of Locales that r.Locale names (MatchLocale),
// else the brand's default (brand.DefaultLocale when it names none). Every channel decides
// this way, so the e-mail's language and the webhook body's locale never disagree.
func brandAndLocale(brands *brand.Set, r *Reminder) (*brand.Brand, string) {
	b := brands.For(r.TemplateID, r.ReferenceID)
	locale := MatchLocale(r.Locale)
	if locale == "" {
		locale = b.DefaultLocaleOr()
	}
	return b, locale
}
