package persona

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrMalformedToken is wrapped by SessionTokenExpiry's errors: the token is not a JWT or has
// no numeric exp claim.
var ErrMalformedToken = errors.New("malformed session token")

// SessionTokenExpiry returns the exp claim of a Persona session token, which is a JWT
// (PERSONA.md §6). The signature is NOT verified: the key is Persona's, and the value is used
// only to know when the token stops working. The error wraps ErrMalformedToken and never
// contains the token.
func SessionTokenExpiry(token string) (time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, fmt.Errorf("read token expiry: %w: %d segments, want 3", ErrMalformedToken, len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, fmt.Errorf("read token expiry: %w: claims are not base64url", ErrMalformedToken)
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return time.Time{}, fmt.Errorf("read token expiry: %w: claims are not a JSON object", ErrMalformedToken)
	}
	if claims.Exp == nil {
		return time.Time{}, fmt.Errorf("read token expiry: %w: no exp claim", ErrMalformedToken)
	}
	exp, err := claims.Exp.Float64()
	if err != nil || math.IsNaN(exp) || math.IsInf(exp, 0) || exp <= 0 {
		return time.Time{}, fmt.Errorf("read token expiry: %w: exp is not a positive number", ErrMalformedToken)
	}
	sec, frac := math.Modf(exp)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}
