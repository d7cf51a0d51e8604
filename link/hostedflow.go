package link

import (
	"net/url"
	"strings"
)

// DefaultHostedFlowURL is Persona's hosted flow (PERSONA.md §6).
const DefaultHostedFlowURL = "https://inquiry.withpersona.com/verify"

// HostedFlowURL returns the hosted-flow URL that resumes an inquiry (PERSONA.md §6): base
// (DefaultHostedFlowURL when empty) with the query parameters inquiry-id, session-token and
// redirect-uri added, each only when not empty, query-escaped. Parameters already in base
// are kept. The result carries the session token: never log it.
func HostedFlowURL(base, inquiryID, sessionToken, redirectURI string) string {
	if base == "" {
		base = DefaultHostedFlowURL
	}
	set := func(q url.Values) url.Values {
		if inquiryID != "" {
			q.Set("inquiry-id", inquiryID)
		}
		if sessionToken != "" {
			q.Set("session-token", sessionToken)
		}
		if redirectURI != "" {
			q.Set("redirect-uri", redirectURI)
		}
		return q
	}
	u, err := url.Parse(base)
	if err != nil {
		// Not a URL we can edit: append the parameters as they are.
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		return base + sep + set(url.Values{}).Encode()
	}
	u.RawQuery = set(u.Query()).Encode()
	return u.String()
}
