package notify

import (
	"slices"
	"strings"
)

// Locales returns the locales the built-in e-mail templates come in: English, Spanish and
// German. A brand's default locale and an inquiry's locale field choose among them.
func Locales() []string { return []string{"en", "es", "de"} }

// countryLanguages maps the ISO 3166 country codes whose main language is one of Locales
// (and is not itself a language code of Locales) to that language.
var countryLanguages = map[string]string{
	"mx": "es", "ar": "es", "co": "es", "cl": "es", "pe": "es", "ve": "es", "ec": "es", "gt": "es",
	"cu": "es", "bo": "es", "do": "es", "hn": "es", "py": "es", "sv": "es", "ni": "es", "cr": "es",
	"pa": "es", "uy": "es", "pr": "es", "at": "de", "li": "de", "gb": "en", "us": "en", "ie": "en",
	"au": "en", "nz": "en", "ca": "en",
}

// MatchLocale returns the locale of Locales that s names, or "" when none does: a language
// tag ("es", "de-AT", "en_GB", case-insensitive) by its language, else an ISO country code
// ("MX", "AT") by the country's main language. "es" and "de" are read as languages (Spanish,
// German), which also suits Spain and Germany.
func MatchLocale(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	lang, _, _ := strings.Cut(strings.ReplaceAll(s, "_", "-"), "-")
	if slices.Contains(Locales(), lang) {
		return lang
	}
	if l, ok := countryLanguages[s]; ok {
		return l
	}
	return ""
}
