package notify

import "fmt"

// LinkMode says what link a reminder carries (DESIGN.md decision 7).
type LinkMode string

// The link modes.
const (
	// LinkSessionToken is the default: Persona's hosted flow URL with a session token minted
	// for the reminder (link.HostedFlowURL).
	LinkSessionToken LinkMode = "session-token"
	// LinkOneTimeLink is Persona's single-use link from generate-one-time-link (PERSONA.md §6),
	// which Persona recommends over e-mailing a session token.
	LinkOneTimeLink LinkMode = "one-time-link"
	// LinkRedirect is a signed, expiring link to resumer's own /r/ endpoint
	// (link.Signer), which mints the session token only when the user clicks.
	LinkRedirect LinkMode = "redirect"
)

// ParseLinkMode returns the LinkMode named s, or an error naming the valid modes.
func ParseLinkMode(s string) (LinkMode, error) {
	switch m := LinkMode(s); m {
	case LinkSessionToken, LinkOneTimeLink, LinkRedirect:
		return m, nil
	}
	return "", fmt.Errorf("parse link mode %q: want %s, %s or %s", s, LinkSessionToken, LinkOneTimeLink, LinkRedirect)
}
