package api

import "github.com/resumer/resumer/brand"

// pageLocales are the languages of the /r/ pages, the same as the e-mails'.
var pageLocales = []string{"en", "es", "de"}

// pageWords are the words of the /r/ pages outside of a page's heading, message and hint.
type pageWords struct {
	Button, FreshLink, Fallback, Questions, ContactSupport, Or string
}

var wordsByLocale = map[string]pageWords{
	"en": {continueButton, "Send me a fresh e-mail", "Start a new verification", "Questions?", "Contact support", "or"},
	"es": {"Continuar la verificación", "Enviarme un correo nuevo", "Empezar una nueva verificación", "¿Preguntas?", "Contactar con soporte", "o"},
	"de": {"Verifizierung fortsetzen", "Neue E-Mail senden", "Neue Verifizierung beginnen", "Fragen?", "Support kontaktieren", "oder"},
}

// pageTexts are a page's heading, message and hint in a language other than English, by
// page name.
var pageTexts = map[string]map[string][3]string{
	"es": {
		"continue": {"Continúa tu verificación", "Pediste retomar tu verificación de identidad donde la dejaste.",
			"El botón abre la página segura de verificación. Si no lo pediste, puedes cerrar esta página."},
		"form_expired": {"Pulsa el botón de nuevo", "Esta página estuvo abierta un buen rato; por tu seguridad, confírmalo una vez más.",
			"El botón abre la página segura de verificación."},
		"link_used": {"Este enlace ya se ha usado", "Por tu seguridad, cada enlace que enviamos abre tu verificación una sola vez.",
			"Si aún necesitas terminar, nuestro próximo recordatorio (si queda alguno) trae un enlace nuevo, o pide un correo nuevo donde empezaste tu verificación."},
		"invalid_link": {"Este enlace no es válido", "Puede que el enlace se haya cortado o cambiado al copiarlo.",
			"Abre de nuevo el enlace del último mensaje que te enviamos."},
		"link_expired": {"Este enlace ha caducado", "Por tu seguridad, los enlaces para continuar tu verificación solo funcionan durante un tiempo limitado.",
			"Pide un enlace nuevo donde empezaste tu verificación."},
		"finished": {"Aquí no queda nada por hacer", "Esta verificación ya ha terminado o ya no se puede continuar con este enlace.",
			"Si crees que es un error, contacta con el servicio que te pidió la verificación."},
		"inquiry_expired": {"Esta verificación ha caducado", "El plazo para terminar esta verificación se ha agotado.",
			"Vuelve a empezar donde iniciaste tu verificación."},
		"too_many_attempts": {"Demasiados intentos", "Esta verificación se ha abierto demasiadas veces en poco tiempo.",
			"Espera un rato y vuelve a abrir el enlace."},
		"unavailable": {"No podemos continuar ahora", "El servicio de verificación no está disponible en este momento.",
			"Vuelve a probar el enlace dentro de unos minutos."},
	},
	"de": {
		"continue": {"Setzen Sie Ihre Verifizierung fort", "Sie möchten Ihre Identitätsprüfung dort fortsetzen, wo Sie aufgehört haben.",
			"Die Schaltfläche öffnet die sichere Verifizierungsseite. Wenn Sie das nicht angefordert haben, können Sie diese Seite schließen."},
		"form_expired": {"Bitte drücken Sie die Schaltfläche erneut", "Diese Seite war eine Weile geöffnet; zu Ihrer Sicherheit bestätigen Sie bitte noch einmal.",
			"Die Schaltfläche öffnet die sichere Verifizierungsseite."},
		"link_used": {"Dieser Link wurde bereits verwendet", "Zu Ihrer Sicherheit öffnet jeder Link, den wir senden, Ihre Verifizierung nur einmal.",
			"Wenn Sie noch abschließen müssen, bringt unsere nächste Erinnerung (falls noch eine fällig ist) einen neuen Link, oder fordern Sie dort, wo Sie begonnen haben, eine neue E-Mail an."},
		"invalid_link": {"Dieser Link ist ungültig", "Der Link wurde beim Kopieren vielleicht gekürzt oder verändert.",
			"Bitte öffnen Sie den Link aus unserer neuesten Nachricht erneut."},
		"link_expired": {"Dieser Link ist abgelaufen", "Zu Ihrer Sicherheit funktionieren Links zum Fortsetzen Ihrer Verifizierung nur begrenzte Zeit.",
			"Bitte fordern Sie dort, wo Sie begonnen haben, einen neuen Link an."},
		"finished": {"Hier ist nichts mehr zu tun", "Diese Verifizierung ist bereits abgeschlossen oder kann mit diesem Link nicht mehr fortgesetzt werden.",
			"Wenn Sie einen Fehler vermuten, wenden Sie sich an den Dienst, der Sie um die Verifizierung gebeten hat."},
		"inquiry_expired": {"Diese Verifizierung ist abgelaufen", "Die Zeit für diese Verifizierung ist abgelaufen.",
			"Bitte beginnen Sie dort neu, wo Sie Ihre Verifizierung gestartet haben."},
		"too_many_attempts": {"Zu viele Versuche", "Diese Verifizierung wurde in kurzer Zeit zu oft geöffnet.",
			"Bitte warten Sie eine Weile und öffnen Sie den Link dann erneut."},
		"unavailable": {"Wir können gerade nicht fortfahren", "Der Verifizierungsdienst ist im Moment nicht erreichbar.",
			"Bitte versuchen Sie den Link in einigen Minuten erneut."},
	},
}

// localize returns p in locale (English, as declared, for "en" or a page without words).
func localize(p page, locale string) page {
	if t, ok := pageTexts[locale][p.name]; ok {
		p.Heading, p.Message, p.Hint = t[0], t[1], t[2]
	}
	return p
}

// pageLocale is the language of a page for an inquiry of brand b: the inquiry's locale field
// when it names one of pageLocales, else the brand's locale, else English.
func pageLocale(inquiryLocale string, b *brand.Brand) string {
	if l := brand.MatchLocale(inquiryLocale, pageLocales); l != "" {
		return l
	}
	if l := brand.MatchLocale(b.Locale, pageLocales); l != "" {
		return l
	}
	return "en"
}
