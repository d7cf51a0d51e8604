package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// Scope is a permission an API key grants.
type Scope string

// The scopes of the API.
const (
	// ScopeInquiriesRead allows GET /v1/inquiries/{inquiry_id}.
	ScopeInquiriesRead Scope = "inquiries:read"
	// ScopeSessionsCreate allows POST /v1/inquiries/{inquiry_id}/sessions.
	ScopeSessionsCreate Scope = "sessions:create"
	// ScopeReportsRead allows GET /v1/report: the recovery funnel and uplift of every
	// inquiry (so only for keys without a reference prefix).
	ScopeReportsRead Scope = "reports:read"
)

// APIKey is one customer backend's credential. Only the key's SHA-256 is kept; the key itself
// is shown once to whoever generates it (NewAPIKey) and never configured in clear.
type APIKey struct {
	// Name identifies the key in logs and in its rate limit; [A-Za-z0-9_.-], 1 to 64
	// characters, unique.
	Name string
	// Hash is the SHA-256 of the key.
	Hash [sha256.Size]byte
	// Scopes are the routes the key may use.
	Scopes []Scope
	// ReferencePrefix, when not empty, limits the key to inquiries whose reference id is
	// the prefix itself or starts with it at a delimiter (ReferenceDelimiters): the customer or
	// organisation the key belongs to (PERSONA.md §8). "acme" covers "acme", "acme-1" and
	// "acme:1" but not "acmecorp-1"; a prefix that ends in a delimiter ("acme-") covers what
	// starts with it.
	ReferencePrefix string
	// Revoked keys are answered 401 like unknown ones, and logged by name.
	Revoked bool
}

// allows reports whether the key grants scope.
func (k *APIKey) allows(scope Scope) bool { return slices.Contains(k.Scopes, scope) }

// ReferenceDelimiters are the characters at which a reference id may continue after a key's
// ReferencePrefix.
const ReferenceDelimiters = "-_:/."

// covers reports whether the key may touch an inquiry with this reference id: no prefix, the
// prefix exactly, or the prefix followed by (or ending in) one of ReferenceDelimiters.
func (k *APIKey) covers(referenceID string) bool {
	p := k.ReferencePrefix
	switch {
	case p == "" || referenceID == p:
		return true
	case !strings.HasPrefix(referenceID, p):
		return false
	}
	return strings.IndexByte(ReferenceDelimiters, p[len(p)-1]) >= 0 ||
		strings.IndexByte(ReferenceDelimiters, referenceID[len(p)]) >= 0
}

// apiKeyPrefix starts every key NewAPIKey generates, so a leaked one is recognisable.
const apiKeyPrefix = "rsk_"

// maxBearerLen bounds the Authorization value hashed per request.
const maxBearerLen = 512

var keyNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// HashAPIKey returns the lowercase hex SHA-256 of key, the form RESUMER_API_KEYS holds
// (sha256=<hex>). Operators hash a key they generated elsewhere with it.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NewAPIKey generates a random API key ("rsk_" and 43 URL-safe characters, 256 bits) and its
// HashAPIKey. Give the key to the customer and configure only the hash. The error is
// crypto/rand's.
func NewAPIKey() (key, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generate api key: %w", err)
	}
	key = apiKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashAPIKey(key), nil
}

// ParseAPIKeys parses RESUMER_API_KEYS. Entries are separated by ';' or newlines; blank
// entries and lines starting with '#' are ignored. An entry is whitespace-separated
// name=value fields:
//
//	name=acme sha256=<64 hex digits> scopes=inquiries:read,sessions:create reference_prefix=acme-
//
// name, sha256 and scopes are required; scopes is a comma-separated list of inquiries:read,
// sessions:create and reports:read; reference_prefix is optional (no whitespace or ';'; see
// APIKey.ReferencePrefix for what it covers); revoked=true keeps a
// withdrawn key known so that its use is logged by name. The error names the entry (by number
// and name) and the field; an empty s gives no keys and no error. Names and hashes must be
// unique.
func ParseAPIKeys(s string) ([]APIKey, error) {
	var keys []APIKey
	n := 0
	for line := range strings.Lines(s) {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for entry := range strings.SplitSeq(line, ";") {
			if strings.TrimSpace(entry) == "" {
				continue
			}
			n++
			k, err := parseAPIKey(entry)
			if err != nil {
				return nil, fmt.Errorf("parse api key %d: %w", n, err)
			}
			keys = append(keys, k)
		}
	}
	if err := checkKeys(keys); err != nil {
		return nil, fmt.Errorf("parse api keys: %w", err)
	}
	return keys, nil
}

// parseAPIKey parses one entry of ParseAPIKeys.
func parseAPIKey(entry string) (APIKey, error) {
	var k APIKey
	seen := map[string]bool{}
	for field := range strings.FieldsSeq(entry) {
		name, value, ok := strings.Cut(field, "=")
		if !ok || value == "" {
			return k, fmt.Errorf("field %q: want name=value", name)
		}
		if seen[name] {
			return k, fmt.Errorf("field %s given twice", name)
		}
		seen[name] = true
		switch name {
		case "name":
			k.Name = value
		case "sha256":
			b, err := hex.DecodeString(value)
			if err != nil || len(b) != sha256.Size {
				return k, errors.New("sha256: want 64 hex digits (HashAPIKey)")
			}
			copy(k.Hash[:], b)
		case "scopes":
			for sc := range strings.SplitSeq(value, ",") {
				switch s := Scope(sc); s {
				case ScopeInquiriesRead, ScopeSessionsCreate, ScopeReportsRead:
					if !slices.Contains(k.Scopes, s) {
						k.Scopes = append(k.Scopes, s)
					}
				default:
					return k, fmt.Errorf("scopes: unknown scope %q (want %s, %s or %s)", sc, ScopeInquiriesRead, ScopeSessionsCreate, ScopeReportsRead)
				}
			}
		case "reference_prefix":
			k.ReferencePrefix = value
		case "revoked":
			switch value {
			case "true":
				k.Revoked = true
			case "false":
			default:
				return k, fmt.Errorf("revoked: %q is not true or false", value)
			}
		default:
			return k, fmt.Errorf("unknown field %q (want name, sha256, scopes, reference_prefix, revoked)", name)
		}
	}
	for _, required := range []string{"name", "sha256", "scopes"} {
		if !seen[required] {
			return k, fmt.Errorf("missing field %s", required)
		}
	}
	if !keyNamePattern.MatchString(k.Name) {
		return k, fmt.Errorf("name %q: want 1 to 64 of A-Z a-z 0-9 _ . -", k.Name)
	}
	return k, nil
}

// checkKeys reports keys New cannot serve: a bad name, a zero hash, no scope, or a name or
// hash used twice.
func checkKeys(keys []APIKey) error {
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]string{}
	for _, k := range keys {
		if !keyNamePattern.MatchString(k.Name) {
			return fmt.Errorf("key name %q: want 1 to 64 of A-Z a-z 0-9 _ . -", k.Name)
		}
		if names[k.Name] {
			return fmt.Errorf("key name %s used twice", k.Name)
		}
		names[k.Name] = true
		if k.Hash == ([sha256.Size]byte{}) {
			return fmt.Errorf("key %s has no hash", k.Name)
		}
		if other, ok := hashes[k.Hash]; ok {
			return fmt.Errorf("keys %s and %s have the same hash", other, k.Name)
		}
		hashes[k.Hash] = k.Name
		if len(k.Scopes) == 0 {
			return fmt.Errorf("key %s has no scope", k.Name)
		}
	}
	return nil
}

// authenticate finds the key of r's "Authorization: Bearer <key>" header. It hashes the
// presented key and compares the hash with every configured one in constant time, without
// stopping at a match, so the time taken says nothing about which key matched. A revoked key
// is returned with ok false, for the log line; nil, false means no key or an unknown one.
func (s *Server) authenticate(r *http.Request) (key *APIKey, ok bool) {
	scheme, bearer, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return nil, false
	}
	bearer = strings.TrimSpace(bearer)
	if bearer == "" || len(bearer) > maxBearerLen {
		return nil, false
	}
	sum := sha256.Sum256([]byte(bearer))
	match := -1
	for i := range s.keys {
		if subtle.ConstantTimeCompare(sum[:], s.keys[i].Hash[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return nil, false
	}
	key = &s.keys[match]
	return key, !key.Revoked
}

// authorize authenticates r and checks that the key grants scope; on failure it returns the
// 401 or 403 to answer (with the WWW-Authenticate header set on w for a 401).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, rq *request, scope Scope) (*APIKey, *failure) {
	key, ok := s.authenticate(r)
	if key != nil {
		rq.keyName = key.Name
	}
	if !ok {
		challenge := `Bearer realm="resumer"`
		detail := "Send an API key as Authorization: Bearer <key>."
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
			detail = "The API key is not valid."
		}
		if key != nil {
			rq.note = "revoked api key"
		}
		w.Header().Set("WWW-Authenticate", challenge)
		return nil, fail(http.StatusUnauthorized, CodeUnauthorized, detail)
	}
	if !key.allows(scope) {
		return nil, fail(http.StatusForbidden, CodeForbidden, "The API key lacks the scope "+string(scope)+".")
	}
	return key, nil
}
