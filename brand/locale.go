package brand

import (
	"slices"
	"strings"
)

// countryLanguages maps the ISO 3166 country codes whose main language is one of Locales
// (and is not itself a language code we ship) to that language.
var countryLanguages = map[string]string{
	"mx": "es", "ar": "es", "co": "es", "cl": "es", "pe": "es", "ve": "es", "ec": "es", "gt": "es",
	"cu": "es", "bo": "es", "do": "es", "hn": "es", "py": "es", "sv": "es", "ni": "es", "cr": "es",
	"pa": "es", "uy": "es", "pr": "es", "at": "de", "li": "de", "gb": "en", "us": "en", "ie": "en",
	"au": "en", "nz": "en", "ca": "en",
}

// MatchLocale returns the locale of locales that s names, or "" when none does: a language
// tag ("es", "de-AT", "en_GB", case-insensitive) by its language, else an ISO country code
// ("MX", "AT") by the country's main language. "es" and "de" are read as languages (Spanish,
// German), which also suits Spain and Germany.
func MatchLocale(s string, locales []string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	lang, _, _ := strings.Cut(strings.ReplaceAll(s, "_", "-"), "-")
	if slices.Contains(locales, lang) {
		return lang
	}
	if l, ok := countryLanguages[s]; ok && slices.Contains(locales, l) {
		return l
	}
	return ""
}
