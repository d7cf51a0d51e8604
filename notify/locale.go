package notify

// Locales returns the locales the built-in e-mail templates come in: English, Spanish and
// German. A brand's default locale and an inquiry's locale field choose among them.
func Locales() []string { return []string{"en", "es", "de"} }
