package personatest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// sessionClaims are the claims of a simulated session token. Persona's real claims are not
// documented; exp is the only one resumer reads (PERSONA.md §6).
type sessionClaims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	InquiryID string `json:"inquiry-id"`
	SessionID string `json:"inquiry-session-id"`
	IssuedAt  int64  `json:"iat"`
	ExpiresAt int64  `json:"exp"`
	TokenID   string `json:"jti"`
}

var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// signToken returns an HS256 JWT of claims.
func signToken(secret []byte, c sessionClaims) string {
	payload, _ := json.Marshal(c) // a struct of strings and ints always encodes
	unsigned := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(unsigned))
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// verifyToken checks the HS256 signature and returns the claims; it does not check exp.
func verifyToken(secret []byte, token string) (sessionClaims, error) {
	var c sessionClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != jwtHeader {
		return c, errors.New("not an HS256 token of this simulator")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return c, errors.New("signature is not base64url")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return c, errors.New("bad signature")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, errors.New("claims are not base64url")
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, errors.New("claims are not JSON")
	}
	return c, nil
}

// mintSessionLocked creates a session of q whose token expires with q's current expires-at
// (PERSONA.md §6, inferred), or, with Options.SessionTokenLifetime, that long after minting
// whatever the inquiry's expiry.
func (s *Server) mintSessionLocked(q *inquiry, now time.Time) *session {
	se := &session{id: newID("iqse_"), createdAt: now, expiresAt: q.expiresAt}
	exp := q.expiresAt
	if l := s.opts.SessionTokenLifetime; l > 0 {
		exp = now.Add(l)
	}
	se.token = signToken(s.opts.JWTSecret, sessionClaims{
		Issuer: "persona-simulator", Subject: se.id, InquiryID: q.id, SessionID: se.id,
		IssuedAt: now.Unix(), ExpiresAt: exp.Unix(), TokenID: newID(""),
	})
	q.sessions = append(q.sessions, se)
	return se
}

// reusableSessionLocked returns an unused, unrevoked session of q minted under q's current
// expiry, which resume hands out again instead of minting (PERSONA.md §6).
func reusableSessionLocked(q *inquiry, now time.Time) *session {
	for i := len(q.sessions) - 1; i >= 0; i-- {
		se := q.sessions[i]
		if !se.used && !se.revoked && se.expiresAt.Equal(q.expiresAt) && now.Before(se.expiresAt) {
			return se
		}
	}
	return nil
}

// sessionLocked checks token against inquiryID at now and returns its session.
func (s *Server) sessionLocked(inquiryID, token string, now time.Time) (*inquiry, *session, error) {
	c, err := verifyToken(s.opts.JWTSecret, token)
	if err != nil {
		return nil, nil, err
	}
	if c.InquiryID != inquiryID {
		return nil, nil, errors.New("token is for another inquiry")
	}
	if now.Unix() >= c.ExpiresAt {
		return nil, nil, errors.New("token expired")
	}
	q := s.inquiries[inquiryID]
	if q == nil {
		return nil, nil, errors.New("unknown inquiry")
	}
	if !q.status.Resumable() {
		return nil, nil, fmt.Errorf("inquiry is %s", q.status)
	}
	for _, se := range q.sessions {
		if se.id == c.SessionID {
			if se.revoked {
				return nil, nil, errors.New("session revoked")
			}
			return q, se, nil
		}
	}
	return nil, nil, errors.New("unknown session")
}

// ValidSession reports whether token is a session token this simulator issued for
// inquiryID that works now: its signature verifies, its exp has not passed, the inquiry is
// still created or pending, and the session was not ended by an expiry or redaction.
func (s *Server) ValidSession(inquiryID, token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	s.expireDueLocked(now)
	_, _, err := s.sessionLocked(inquiryID, token, now)
	return err == nil
}

// UseSession simulates the user opening the hosted flow with token: the session becomes
// used, so the next resume mints a new one. It fails when ValidSession would be false.
func (s *Server) UseSession(inquiryID, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	s.expireDueLocked(now)
	_, se, err := s.sessionLocked(inquiryID, token, now)
	if err != nil {
		return fmt.Errorf("use session of inquiry %s: %w", inquiryID, err)
	}
	se.used = true
	return nil
}
