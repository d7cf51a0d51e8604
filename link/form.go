package link

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors of Signer.VerifyForm; check them with errors.Is.
var (
	// ErrFormInvalid: the form token is missing, malformed, or not made by FormToken for this
	// link with this secret (a forged or cross-site submission).
	ErrFormInvalid = errors.New("form token invalid")
	// ErrFormExpired: the form token is authentic but older than its expiry: the page sat open
	// too long. Show the page again with a fresh token.
	ErrFormExpired = errors.New("form token expired")
)

const formContext = "resumer continue form\x00"

// FormToken returns the anti-forgery token of the "Continue verification" form that the /r/
// page for linkToken shows: the expiry in unix seconds, a dot, and a truncated HMAC-SHA256 of
// the link token and the expiry under Secret (domain-separated from the link MAC). Only a page
// served by resumer for this very link carries a valid one, so a POST from elsewhere (a
// cross-site form, a scanner that never fetched the page) is refused. It panics like Token on
// a short secret.
func (s Signer) FormToken(linkToken string, expires time.Time) string {
	if len(s.Secret) < MinSecretLen {
		panic(fmt.Sprintf("link: signer secret has %d bytes, want at least %d", len(s.Secret), MinSecretLen))
	}
	exp := expires.Unix()
	return fmt.Sprintf("%d.%s", exp, base64.RawURLEncoding.EncodeToString(s.formMAC(linkToken, exp)))
}

// VerifyForm checks a form token against the link it was made for. It fails with
// ErrFormInvalid (also for a short secret) or, for an authentic token at or past its
// expiry, ErrFormExpired. The MAC is compared in constant time before the expiry is trusted.
func (s Signer) VerifyForm(linkToken, formToken string, now time.Time) error {
	expStr, macStr, ok := strings.Cut(formToken, ".")
	if !ok || len(expStr) == 0 || len(expStr) > 19 || len(macStr) > 64 {
		return fmt.Errorf("verify form token: %w", ErrFormInvalid)
	}
	var exp int64
	for _, c := range expStr {
		if c < '0' || c > '9' {
			return fmt.Errorf("verify form token: %w", ErrFormInvalid)
		}
		exp = exp*10 + int64(c-'0')
	}
	mac, err := decodeCanonical(macStr)
	if err != nil || len(s.Secret) < MinSecretLen || !hmac.Equal(mac, s.formMAC(linkToken, exp)) {
		return fmt.Errorf("verify form token: %w", ErrFormInvalid)
	}
	if !now.Before(time.Unix(exp, 0)) {
		return fmt.Errorf("verify form token: %w", ErrFormExpired)
	}
	return nil
}

func (s Signer) formMAC(linkToken string, exp int64) []byte {
	h := hmac.New(sha256.New, s.Secret)
	h.Write([]byte(formContext))
	h.Write(binary.AppendVarint(nil, exp))
	h.Write([]byte(linkToken))
	return h.Sum(nil)[:redirectMACLen]
}

// ID returns a short, stable identifier of a link token (its MAC, URL-safe base64): what a
// single-use store keeps to remember that the link was used, without keeping the link. It
// returns "" for a token too short to carry a MAC; call it only on a token Verify accepted.
func ID(linkToken string) string {
	raw, err := decodeCanonical(linkToken)
	if err != nil || len(raw) < redirectMACLen {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(raw[len(raw)-redirectMACLen:])
}
