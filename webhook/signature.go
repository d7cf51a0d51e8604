package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SignatureHeader is the request header that carries Persona's signature (PERSONA.md §1).
// Go's header lookup is case-insensitive, so "persona-signature" is found too.
const SignatureHeader = "Persona-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the receiver's clock, in
// either direction, before the signature is refused. Persona documents none; Stripe's
// identical scheme uses five minutes (PERSONA.md §1).
const DefaultTolerance = 5 * time.Minute

// maxSignatureSets bounds the sets one header may carry, and so the HMAC work one request can
// cause. Persona sends one, or two while a secret is being rotated.
const maxSignatureSets = 8

// The errors Verify returns; ParseSignatureHeader returns the first two. A caller tells them
// apart with errors.Is. None of them is worth retrying with the same request.
var (
	// ErrNotSigned means the request has no Persona-Signature header, or an empty one.
	ErrNotSigned = errors.New("no Persona-Signature header")
	// ErrMalformedHeader means the header is not one or more "t=<unix seconds>,v1=<hex>"
	// sets separated by spaces.
	ErrMalformedHeader = errors.New("malformed Persona-Signature header")
	// ErrTooOld means a signature matched, but its timestamp is older than the tolerance.
	ErrTooOld = errors.New("signature timestamp older than the tolerance")
	// ErrInFuture means a signature matched, but its timestamp is further ahead of the
	// receiver's clock than the tolerance.
	ErrInFuture = errors.New("signature timestamp further in the future than the tolerance")
	// ErrNoValidSignature means no set of the header matches the body with any secret.
	ErrNoValidSignature = errors.New("no signature matches the body with any secret")
)

// SignatureSet is one "t=..,v1=.." set of a Persona-Signature header.
type SignatureSet struct {
	// Timestamp is t: when Persona sent this delivery attempt, in Unix seconds.
	Timestamp int64
	// Signature is v1 decoded from hex: HMAC-SHA256 of "<t>.<raw body>" keyed with the
	// webhook secret.
	Signature []byte
}

// String formats the set as it appears in the header: "t=<unix seconds>,v1=<lowercase hex>".
// Parsing the result gives back an equal set.
func (s SignatureSet) String() string {
	return "t=" + strconv.FormatInt(s.Timestamp, 10) + ",v1=" + hex.EncodeToString(s.Signature)
}

// ParseSignatureHeader parses a Persona-Signature header value: one set
// "t=<unix seconds>,v1=<64 hex digits>", or several separated by spaces while a secret is
// being rotated (PERSONA.md §1). Spaces and tabs around sets and around commas are tolerated,
// and keys other than t and v1 are ignored so that a new scheme does not break the old one.
//
// It fails with ErrNotSigned when header is empty or blank, and with an error wrapping
// ErrMalformedHeader when a set lacks t or v1, repeats one, has a t that is not a plain
// decimal number, has a v1 that is not 64 hex digits, has an empty element, or when there are
// more than eight sets. Error messages never quote the header.
func ParseSignatureHeader(header string) ([]SignatureSet, error) {
	fields := strings.FieldsFunc(trimSpaceAroundCommas(header), isSpace)
	if len(fields) == 0 {
		return nil, ErrNotSigned
	}
	if len(fields) > maxSignatureSets {
		return nil, fmt.Errorf("%w: %d sets, at most %d allowed", ErrMalformedHeader, len(fields), maxSignatureSets)
	}
	sets := make([]SignatureSet, 0, len(fields))
	for i, f := range fields {
		set, err := parseSignatureSet(f)
		if err != nil {
			return nil, fmt.Errorf("%w: set %d: %s", ErrMalformedHeader, i+1, err)
		}
		sets = append(sets, set)
	}
	return sets, nil
}

// parseSignatureSet parses one "t=..,v1=.." set. Its errors describe the problem without
// quoting the input.
func parseSignatureSet(s string) (SignatureSet, error) {
	var set SignatureSet
	var haveT, haveV1 bool
	for part := range strings.SplitSeq(s, ",") {
		key, value, ok := strings.Cut(part, "=")
		if !ok || key == "" {
			return SignatureSet{}, errors.New("element is not key=value")
		}
		switch key {
		case "t":
			if haveT {
				return SignatureSet{}, errors.New("t given twice")
			}
			t, err := parseUnixSeconds(value)
			if err != nil {
				return SignatureSet{}, err
			}
			set.Timestamp, haveT = t, true
		case "v1":
			if haveV1 {
				return SignatureSet{}, errors.New("v1 given twice")
			}
			if len(value) != hex.EncodedLen(sha256.Size) {
				return SignatureSet{}, fmt.Errorf("v1 has %d characters, want %d hex digits", len(value), hex.EncodedLen(sha256.Size))
			}
			sig, err := hex.DecodeString(value)
			if err != nil {
				return SignatureSet{}, errors.New("v1 is not hex")
			}
			set.Signature, haveV1 = sig, true
		}
	}
	switch {
	case !haveT:
		return SignatureSet{}, errors.New("missing t")
	case !haveV1:
		return SignatureSet{}, errors.New("missing v1")
	}
	return set, nil
}

// parseUnixSeconds accepts what Persona sends: decimal digits, no sign, no leading zero. The
// digits are signed as they stand, so a leading zero would make the re-formatted t differ
// from the signed one.
func parseUnixSeconds(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("t is empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("t is not a decimal number")
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, errors.New("t has a leading zero")
	}
	t, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("t is out of range")
	}
	return t, nil
}

// Verify checks a Persona-Signature header against the raw request body (PERSONA.md §1). It
// accepts the request when any set of the header carries the HMAC-SHA256 of "<t>.<body>"
// under any of secrets (empty secrets are skipped) and that set's t lies within tolerance of
// now, in either direction; exactly tolerance away still verifies. A tolerance of zero or less
// means DefaultTolerance. Signatures are compared with hmac.Equal.
//
// It returns nil when the request verifies. Otherwise it returns ErrNotSigned or an error
// wrapping ErrMalformedHeader (see ParseSignatureHeader); ErrTooOld or ErrInFuture when a
// signature matched but only with a timestamp outside the tolerance; and ErrNoValidSignature
// when nothing matched, including when no secret is given.
func Verify(header string, body []byte, secrets [][]byte, now time.Time, tolerance time.Duration) error {
	sets, err := ParseSignatureHeader(header)
	if err != nil {
		return err
	}
	return verifySets(sets, body, func(i int, t int64, body []byte) []byte {
		if len(secrets[i]) == 0 {
			return nil
		}
		return signature(t, body, secrets[i])
	}, len(secrets), now, tolerance)
}

// verifySets is Verify after parsing, so the receiver can refuse a bad header before it reads
// the body. The timestamp is checked only for a set whose signature matches, so ErrTooOld and
// ErrInFuture always describe a genuine, if stale, Persona delivery.
//
// sum(i, t, body) is the MAC of "<t>.<body>" under the i-th of n secrets, nil for an empty
// secret.
func verifySets(sets []SignatureSet, body []byte, sum func(i int, t int64, body []byte) []byte, n int, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// During a rotation both sets usually share t: compute each (t, secret) MAC once.
	type macs struct {
		t    int64
		sums [][]byte // by index in secrets; nil for an empty secret
	}
	var computed []macs
	var timeErr error
	for _, set := range sets {
		var sums [][]byte
		for _, c := range computed {
			if c.t == set.Timestamp {
				sums = c.sums
				break
			}
		}
		if sums == nil {
			sums = make([][]byte, n)
			for i := range n {
				sums[i] = sum(i, set.Timestamp, body)
			}
			computed = append(computed, macs{t: set.Timestamp, sums: sums})
		}
		matched := false
		for _, sum := range sums {
			// Every candidate is compared, each in constant time.
			if sum != nil && hmac.Equal(sum, set.Signature) {
				matched = true
			}
		}
		if !matched {
			continue
		}
		switch age := now.Sub(time.Unix(set.Timestamp, 0)); {
		case age > tolerance:
			if timeErr == nil {
				timeErr = ErrTooOld
			}
		case age < -tolerance:
			if timeErr == nil {
				timeErr = ErrInFuture
			}
		default:
			return nil
		}
	}
	if timeErr != nil {
		return timeErr
	}
	return ErrNoValidSignature
}

// Sign returns a Persona-Signature header value that Verify accepts for body and secret at
// time t (within the tolerance): "t=<t in Unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
// To imitate a rotation, join two values with one space. It cannot fail, but a t before 1970
// gives a header that Verify refuses as malformed. It is meant for tests and for the
// `resumer webhook sign` command, never for checking a request.
func Sign(body []byte, secret []byte, t time.Time) string {
	return SignatureSet{Timestamp: t.Unix(), Signature: signature(t.Unix(), body, secret)}.String()
}

// signature is HMAC-SHA256(secret, "<t>.<body>").
func signature(t int64, body, secret []byte) []byte {
	return writeSigned(hmac.New(sha256.New, secret), t, body)
}

// writeSigned writes "<t>.<body>" to a keyed, reset mac and returns its sum.
func writeSigned(mac hash.Hash, t int64, body []byte) []byte {
	var buf [21]byte
	b := strconv.AppendInt(buf[:0], t, 10)
	mac.Write(append(b, '.'))
	mac.Write(body)
	return mac.Sum(nil)
}

// macPools keeps keyed HMAC-SHA256 states for a receiver's secrets, one pool per secret:
// keying a new HMAC hashes the key twice and allocates, on every request otherwise.
type macPools []*sync.Pool

func newMACPools(secrets [][]byte) macPools {
	p := make(macPools, len(secrets))
	for i, secret := range secrets {
		p[i] = &sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}
	}
	return p
}

// sum returns HMAC-SHA256 of "<t>.<body>" under the i-th secret.
func (p macPools) sum(i int, t int64, body []byte) []byte {
	mac := p[i].Get().(hash.Hash)
	s := writeSigned(mac, t, body)
	mac.Reset()
	p[i].Put(mac)
	return s
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' }

// trimSpaceAroundCommas removes spaces and tabs next to a comma, so "t=1, v1=ab" reads as
// one set while spaces elsewhere still separate sets.
func trimSpaceAroundCommas(s string) string {
	if !strings.Contains(s, ",") || !strings.ContainsAny(s, " \t") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if !isSpace(rune(s[i])) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && isSpace(rune(s[j])) {
			j++
		}
		afterComma := i > 0 && s[i-1] == ','
		beforeComma := j < len(s) && s[j] == ','
		if !afterComma && !beforeComma {
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}
