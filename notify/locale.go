package notify

import "github.com/resumer/resumer/brand"

// Locales returns the locales the built-in e-mail templates come in: English, Spanish and
// German. A brand's default locale and an inquiry's locale field choose among them.
func Locales() []string { return []string{"en", "es", "de"} }

// MatchLocale returns the locale of Locales that s names, or "" when none does; see
// brand.MatchLocale.
func MatchLocale(s string) string { return brand.MatchLocale(s, Locales()) }
