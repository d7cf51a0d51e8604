package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// LinkMode says what link a reminder carries (DESIGN.md decision 7).
type LinkMode string

// The link modes.
const (
	// LinkSessionToken is the default: Persona's hosted flow URL with a session token minted
	// for the reminder (HostedFlowURL).
	LinkSessionToken LinkMode = "session-token"
	// LinkOneTimeLink is Persona's single-use link from generate-one-time-link (PERSONA.md §6),
	// which Persona recommends over e-mailing a session token.
	LinkOneTimeLink LinkMode = "one-time-link"
	// LinkRedirect is a signed, expiring link to resumer's own /r/ endpoint
	// (RedirectSigner), which mints the session token only when the user clicks.
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

// Sentinel errors of RedirectSigner.Verify. Check them with errors.Is; each wraps the reason.
var (
	// ErrLinkMalformed: the token is not one Sign produces (bad base64, truncated, unknown
	// version). Serve it as 404.
	ErrLinkMalformed = errors.New("malformed redirect link")
	// ErrLinkSignature: the token's MAC does not match (tampered, or signed with another
	// secret). Serve it as 404.
	ErrLinkSignature = errors.New("redirect link signature does not match")
	// ErrLinkExpired: the token is authentic but past its expiry. Serve it as 410.
	ErrLinkExpired = errors.New("redirect link expired")
)

// MinRedirectSecretLen is the shortest secret a RedirectSigner accepts, in bytes.
const MinRedirectSecretLen = 32

const (
	redirectVersion = 1
	redirectMACLen  = 16 // HMAC-SHA256 truncated to 128 bits
	redirectContext = "resumer redirect link\x00"
)

// RedirectSigner signs and verifies the links of the redirect link mode: <PublicURL>/r/<token>,
// where token is the unpadded URL-safe base64 of a small binary payload (version, expiry in
// unix seconds, stage, inquiry id) followed by the first 16 bytes of its HMAC-SHA256 under
// Secret. The token is not encrypted: the inquiry id and stage are readable. The api package
// serves /r/{token} by calling Verify and minting a session token only then.
//
// A RedirectSigner is a value and safe for concurrent use. Rotating Secret invalidates every
// link signed before.
type RedirectSigner struct {
	// Secret keys the HMAC; at least MinRedirectSecretLen bytes.
	Secret []byte
	// PublicURL is the externally visible base URL of the api listener, like
	// "https://resume.example.com"; a trailing slash is ignored.
	PublicURL string
}

// RedirectClaims is what an authentic redirect token says.
type RedirectClaims struct {
	InquiryID string
	Stage     string
	// ExpiresAt has second precision, in UTC.
	ExpiresAt time.Time
}

// Validate reports a configuration the signer cannot work with: a secret shorter than
// MinRedirectSecretLen or a PublicURL that is not an absolute http(s) URL. Call it at
// start-up; Sign panics on a short secret.
func (s RedirectSigner) Validate() error {
	if len(s.Secret) < MinRedirectSecretLen {
		return fmt.Errorf("validate redirect signer: secret has %d bytes, want at least %d", len(s.Secret), MinRedirectSecretLen)
	}
	u, err := url.Parse(s.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("validate redirect signer: public url %q is not an absolute http(s) url", s.PublicURL)
	}
	return nil
}

// Sign returns the redirect link for an inquiry's reminder stage that Verify accepts until
// expires (truncated to the second). It panics when Secret is shorter than
// MinRedirectSecretLen: a link signed with a weak key must never leave the process.
func (s RedirectSigner) Sign(inquiryID, stage string, expires time.Time) string {
	return strings.TrimRight(s.PublicURL, "/") + "/r/" + s.Token(inquiryID, stage, expires)
}

// Token returns the token part of the link Sign returns. It panics like Sign.
func (s RedirectSigner) Token(inquiryID, stage string, expires time.Time) string {
	if len(s.Secret) < MinRedirectSecretLen {
		panic(fmt.Sprintf("notify: redirect signer secret has %d bytes, want at least %d", len(s.Secret), MinRedirectSecretLen))
	}
	buf := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(stage)+len(inquiryID)+redirectMACLen)
	buf = append(buf, redirectVersion)
	buf = binary.AppendVarint(buf, expires.Unix())
	buf = binary.AppendUvarint(buf, uint64(len(stage)))
	buf = append(buf, stage...)
	buf = append(buf, inquiryID...)
	buf = append(buf, s.mac(buf)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Verify checks a token (the part of the link after /r/) and returns its claims. It fails
// with ErrLinkMalformed, ErrLinkSignature (also for a secret shorter than
// MinRedirectSecretLen, which verifies nothing) or ErrLinkExpired when now is at or past the
// expiry; with ErrLinkExpired the claims are returned too, so the caller can tell the user
// which inquiry lapsed. The MAC is checked in constant time before the payload is trusted.
func (s RedirectSigner) Verify(token string, now time.Time) (RedirectClaims, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return RedirectClaims{}, fmt.Errorf("decode redirect token: %w", ErrLinkMalformed)
	}
	if len(raw) < 1+1+1+redirectMACLen {
		return RedirectClaims{}, fmt.Errorf("decode redirect token: %w: too short", ErrLinkMalformed)
	}
	if raw[0] != redirectVersion {
		return RedirectClaims{}, fmt.Errorf("decode redirect token: %w: version %d", ErrLinkMalformed, raw[0])
	}
	payload, mac := raw[:len(raw)-redirectMACLen], raw[len(raw)-redirectMACLen:]
	if len(s.Secret) < MinRedirectSecretLen || !hmac.Equal(mac, s.mac(payload)) {
		return RedirectClaims{}, fmt.Errorf("verify redirect token: %w", ErrLinkSignature)
	}
	rest := payload[1:]
	exp, n := binary.Varint(rest)
	if n <= 0 {
		return RedirectClaims{}, fmt.Errorf("decode redirect token: %w: expiry", ErrLinkMalformed)
	}
	rest = rest[n:]
	stageLen, n := binary.Uvarint(rest)
	if n <= 0 || stageLen > uint64(len(rest)-n) {
		return RedirectClaims{}, fmt.Errorf("decode redirect token: %w: stage", ErrLinkMalformed)
	}
	rest = rest[n:]
	c := RedirectClaims{
		Stage:     string(rest[:stageLen]),
		InquiryID: string(rest[stageLen:]),
		ExpiresAt: time.Unix(exp, 0).UTC(),
	}
	if !now.Before(c.ExpiresAt) {
		return c, fmt.Errorf("verify redirect token: %w", ErrLinkExpired)
	}
	return c, nil
}

// mac is the truncated HMAC-SHA256 of payload, domain-separated from any other use of the
// same secret.
func (s RedirectSigner) mac(payload []byte) []byte {
	h := hmac.New(sha256.New, s.Secret)
	h.Write([]byte(redirectContext))
	h.Write(payload)
	return h.Sum(nil)[:redirectMACLen]
}
