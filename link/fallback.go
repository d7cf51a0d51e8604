package link

import (
	"net/url"
	"slices"
)

// FallbackURL returns the static hosted-flow link that starts a new inquiry of templateID for
// the same user (base, DefaultHostedFlowURL when empty, with inquiry-template-id and
// reference-id): the link for users whose inquiry cannot be resumed any more (too old, on a
// stale template version, expired beyond the win-back window, failed). The reference id ties
// the new inquiry to the same Persona account. It never carries a session token, so it is
// safe in an e-mail. It returns "" when either id is empty or base is not a URL.
func FallbackURL(base, templateID, referenceID string) string {
	if templateID == "" || referenceID == "" {
		return ""
	}
	if base == "" {
		base = DefaultHostedFlowURL
	}
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Del("inquiry-id")
	q.Del("session-token")
	q.Set("inquiry-template-id", templateID)
	q.Set("reference-id", referenceID)
	u.RawQuery = q.Encode()
	return u.String()
}

// Fallbacks says which inquiry templates offer a FallbackURL (per-template opt-in): the
// listed template ids, or every template when the list holds "*".
type Fallbacks []string

// Offers reports whether inquiries of templateID get a fallback link.
func (f Fallbacks) Offers(templateID string) bool {
	return templateID != "" && (slices.Contains(f, "*") || slices.Contains(f, templateID))
}
