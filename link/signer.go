package link

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

// Sentinel errors of Signer.Verify. Check them with errors.Is; each wraps the reason.
var (
	// ErrMalformed: the token is not one Sign produces (bad base64, truncated, unknown
	// version). Serve it as 404.
	ErrMalformed = errors.New("malformed redirect link")
	// ErrSignature: the token's MAC does not match (tampered, or signed with another
	// secret). Serve it as 404.
	ErrSignature = errors.New("redirect link signature does not match")
	// ErrExpired: the token is authentic but past its expiry. Serve it as 410.
	ErrExpired = errors.New("redirect link expired")
)

// MinSecretLen is the shortest secret a Signer accepts, in bytes.
const MinSecretLen = 32

const (
	redirectVersion = 1
	redirectMACLen  = 16 // HMAC-SHA256 truncated to 128 bits
	redirectContext = "resumer redirect link\x00"
)

// Signer signs and verifies the links of the redirect link mode: <PublicURL>/r/<token>,
// where token is the unpadded URL-safe base64 of a small binary payload (version, expiry in
// unix seconds, stage, inquiry id) followed by the first 16 bytes of its HMAC-SHA256 under
// Secret. The token is not encrypted: the inquiry id and stage are readable. The api package
// serves /r/{token} by calling Verify and minting a session token only then.
//
// A Signer is a value and safe for concurrent use. Rotating Secret invalidates every
// link signed before.
type Signer struct {
	// Secret keys the HMAC; at least MinSecretLen bytes.
	Secret []byte
	// PublicURL is the externally visible base URL of the api listener, like
	// "https://resume.example.com"; a trailing slash is ignored.
	PublicURL string
}

// Claims is what an authentic redirect token says.
type Claims struct {
	InquiryID string
	Stage     string
	// ExpiresAt has second precision, in UTC.
	ExpiresAt time.Time
}

// Validate reports a configuration the signer cannot work with: a secret shorter than
// MinSecretLen or a PublicURL that is not an absolute http(s) URL. Call it at
// start-up; Sign panics on a short secret.
func (s Signer) Validate() error {
	if len(s.Secret) < MinSecretLen {
		return fmt.Errorf("validate redirect signer: secret has %d bytes, want at least %d", len(s.Secret), MinSecretLen)
	}
	u, err := url.Parse(s.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("validate redirect signer: public url %q is not an absolute http(s) url", s.PublicURL)
	}
	return nil
}

// Sign returns the redirect link for an inquiry's reminder stage that Verify accepts until
// expires (truncated to the second). It panics when Secret is shorter than
// MinSecretLen: a link signed with a weak key must never leave the process.
func (s Signer) Sign(inquiryID, stage string, expires time.Time) string {
	return strings.TrimRight(s.PublicURL, "/") + "/r/" + s.Token(inquiryID, stage, expires)
}

// Token returns the token part of the link Sign returns. It panics like Sign.
func (s Signer) Token(inquiryID, stage string, expires time.Time) string {
	if len(s.Secret) < MinSecretLen {
		panic(fmt.Sprintf("link: signer secret has %d bytes, want at least %d", len(s.Secret), MinSecretLen))
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
// with ErrMalformed, ErrSignature (also for a secret shorter than
// MinSecretLen, which verifies nothing) or ErrExpired when now is at or past the
// expiry; with ErrExpired the claims are returned too, so the caller can tell the user
// which inquiry lapsed. The MAC is checked in constant time before the payload is trusted.
func (s Signer) Verify(token string, now time.Time) (Claims, error) {
	raw, err := decodeCanonical(token)
	if err != nil {
		return Claims{}, fmt.Errorf("decode redirect token: %w", ErrMalformed)
	}
	if len(raw) < 1+1+1+redirectMACLen {
		return Claims{}, fmt.Errorf("decode redirect token: %w: too short", ErrMalformed)
	}
	if raw[0] != redirectVersion {
		return Claims{}, fmt.Errorf("decode redirect token: %w: version %d", ErrMalformed, raw[0])
	}
	payload, mac := raw[:len(raw)-redirectMACLen], raw[len(raw)-redirectMACLen:]
	if len(s.Secret) < MinSecretLen || !hmac.Equal(mac, s.mac(payload)) {
		return Claims{}, fmt.Errorf("verify redirect token: %w", ErrSignature)
	}
	rest := payload[1:]
	exp, n := binary.Varint(rest)
	if n <= 0 {
		return Claims{}, fmt.Errorf("decode redirect token: %w: expiry", ErrMalformed)
	}
	rest = rest[n:]
	stageLen, n := binary.Uvarint(rest)
	if n <= 0 || stageLen > uint64(len(rest)-n) {
		return Claims{}, fmt.Errorf("decode redirect token: %w: stage", ErrMalformed)
	}
	rest = rest[n:]
	c := Claims{
		Stage:     string(rest[:stageLen]),
		InquiryID: string(rest[stageLen:]),
		ExpiresAt: time.Unix(exp, 0).UTC(),
	}
	if !now.Before(c.ExpiresAt) {
		return c, fmt.Errorf("verify redirect token: %w", ErrExpired)
	}
	return c, nil
}

// mac is the truncated HMAC-SHA256 of payload, domain-separated from any other use of the
// same secret.
func (s Signer) mac(payload []byte) []byte {
	h := hmac.New(sha256.New, s.Secret)
	h.Write([]byte(redirectContext))
	h.Write(payload)
	return h.Sum(nil)[:redirectMACLen]
}

// errNotCanonical is returned for base64 with line breaks, which Go's decoder skips.
var errNotCanonical = errors.New("line break in base64")

// decodeCanonical decodes unpadded URL-safe base64 and refuses the line breaks the standard
// decoder would skip, so that one token has exactly one accepted spelling.
func decodeCanonical(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errNotCanonical
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}
