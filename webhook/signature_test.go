package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/webhook"
)

var (
	oldSecret = []byte("wbhsec_2b9c7f0e-old-secret-being-rotated-out")
	newSecret = []byte("wbhsec_a41d55e3-new-secret-being-rotated-in")
	// now is the receiver's clock in these tests: 2026-01-05T10:00:00Z.
	now = time.Unix(1767607200, 0)
)

// readFixture returns testdata/name, a webhook body as Persona sends it (PERSONA.md §3).
func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatalf("read fixture: %v", err)
	}
	return b
}

// hexMAC is an independent HMAC-SHA256 of "<t>.<body>" (PERSONA.md §1), for building headers
// by hand.
func hexMAC(t int64, body, secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(t, 10) + "." + string(body)))
	return hex.EncodeToString(m.Sum(nil))
}

func TestSignKnownAnswer(t *testing.T) {
	// Computed outside Go: HMAC-SHA256("wbhsec_test", `1767607200.{"data":{}}`).
	const want = "t=1767607200,v1=0b50674aa08484babb5c54cf63b8c1b3a794506253b9abb359d63625c044b2fa"
	if got := webhook.Sign([]byte(`{"data":{}}`), []byte("wbhsec_test"), now); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	if got := webhook.Sign(nil, []byte("k"), now.Add(999*time.Millisecond)); !regexp.MustCompile(`^t=1767607200,v1=[0-9a-f]{64}$`).MatchString(got) {
		t.Errorf("Sign = %q, want t in whole seconds and 64 lowercase hex digits", got)
	}
}

func TestVerify(t *testing.T) {
	body := readFixture(t, "inquiry-started.json")
	ts := now.Unix()
	at := func(d time.Duration) time.Time { return now.Add(d) }
	both := [][]byte{oldSecret, newSecret}
	sigOld, sigNew := webhook.Sign(body, oldSecret, now), webhook.Sign(body, newSecret, now)
	v1New := hexMAC(ts, body, newSecret)
	altered := bytes.Clone(body)
	altered[len(altered)/2] ^= 0x01

	tests := []struct {
		name      string
		header    string
		body      []byte
		secrets   [][]byte
		tolerance time.Duration
		want      error
	}{
		{name: "one set, one secret", header: sigNew, secrets: [][]byte{newSecret}},
		{name: "signed with the second of several secrets", header: sigNew, secrets: both},
		{name: "signed with the first of several secrets", header: sigOld, secrets: both},
		// PERSONA.md §1: during a rotation the header carries two sets separated by one space,
		// and the request is good when any set verifies with any configured secret.
		{name: "rotation, only the new secret configured", header: sigOld + " " + sigNew, secrets: [][]byte{newSecret}},
		{name: "rotation, only the old secret configured", header: sigOld + " " + sigNew, secrets: [][]byte{oldSecret}},
		{name: "rotation, both configured", header: sigOld + " " + sigNew, secrets: both},
		{name: "rotation, new set first", header: sigNew + " " + sigOld, secrets: [][]byte{oldSecret}},
		{name: "rotation, neither secret configured", header: sigOld + " " + sigNew, secrets: [][]byte{[]byte("wbhsec_other")}, want: webhook.ErrNoValidSignature},
		{name: "wrong secret", header: sigOld, secrets: [][]byte{newSecret}, want: webhook.ErrNoValidSignature},
		{name: "no secrets", header: sigNew, want: webhook.ErrNoValidSignature},
		{name: "an empty secret is never used", header: webhook.Sign(body, nil, now), secrets: [][]byte{{}, nil}, want: webhook.ErrNoValidSignature},
		{name: "body altered by one byte", header: sigNew, body: altered, secrets: both, want: webhook.ErrNoValidSignature},
		{name: "body with a trailing newline", header: sigNew, body: append(bytes.Clone(body), '\n'), secrets: both, want: webhook.ErrNoValidSignature},
		// PERSONA.md §1, common mistake: an HMAC over the body alone.
		{name: "signature over the body alone", header: "t=1767607200,v1=" + hmacHex(body, newSecret), secrets: both, want: webhook.ErrNoValidSignature},
		{name: "t of the set differs from the signed one", header: "t=1767607201,v1=" + v1New, secrets: both, want: webhook.ErrNoValidSignature},
		{name: "uppercase hex", header: "t=1767607200,v1=" + strings.ToUpper(v1New), secrets: both},
		{name: "unknown scheme ignored", header: "t=1767607200,v0=deadbeef,v1=" + v1New, secrets: both},

		// Tolerance, both directions; PERSONA.md §1 documents none, 300 s is inferred.
		{name: "exactly at tolerance in the past", header: webhook.Sign(body, newSecret, at(-5*time.Minute)), secrets: both},
		{name: "1s beyond tolerance in the past", header: webhook.Sign(body, newSecret, at(-5*time.Minute-time.Second)), secrets: both, want: webhook.ErrTooOld},
		{name: "exactly at tolerance in the future", header: webhook.Sign(body, newSecret, at(5*time.Minute)), secrets: both},
		{name: "1s beyond tolerance in the future", header: webhook.Sign(body, newSecret, at(5*time.Minute+time.Second)), secrets: both, want: webhook.ErrInFuture},
		{name: "a day old", header: webhook.Sign(body, newSecret, at(-24*time.Hour)), secrets: both, want: webhook.ErrTooOld},
		{name: "custom tolerance, at the edge", header: webhook.Sign(body, newSecret, at(-10*time.Second)), secrets: both, tolerance: 10 * time.Second},
		{name: "custom tolerance, beyond", header: webhook.Sign(body, newSecret, at(-11*time.Second)), secrets: both, tolerance: 10 * time.Second, want: webhook.ErrTooOld},
		{name: "stale but wrong secret is no match", header: webhook.Sign(body, []byte("x"), at(-time.Hour)), secrets: both, want: webhook.ErrNoValidSignature},
		{name: "stale matching set, fresh set wrong", header: webhook.Sign(body, newSecret, at(-time.Hour)) + " " + webhook.Sign(body, []byte("x"), now), secrets: both, want: webhook.ErrTooOld},
		{name: "stale matching set, fresh matching set", header: webhook.Sign(body, oldSecret, at(-time.Hour)) + " " + sigNew, secrets: both},
		{name: "zero time", header: "t=0,v1=" + hexMAC(0, body, newSecret), secrets: both, want: webhook.ErrTooOld},

		// Header shape.
		{name: "empty", header: "", secrets: both, want: webhook.ErrNotSigned},
		{name: "blank", header: " \t ", secrets: both, want: webhook.ErrNotSigned},
		{name: "spaces around the header", header: "  " + sigNew + "\t ", secrets: both},
		{name: "spaces around commas", header: "t=1767607200 ,  v1=" + v1New, secrets: both},
		{name: "several spaces between sets", header: sigOld + "   \t" + sigNew, secrets: [][]byte{newSecret}},
		{name: "missing t", header: "v1=" + v1New, secrets: both, want: webhook.ErrMalformedHeader},
		{name: "missing v1", header: "t=1767607200", secrets: both, want: webhook.ErrMalformedHeader},
		{name: "rotation with one set missing v1", header: "t=1767607200 " + sigNew, secrets: both, want: webhook.ErrMalformedHeader},
		{name: "non-hex v1", header: "t=1767607200,v1=" + strings.Repeat("g", 64), secrets: both, want: webhook.ErrMalformedHeader},
		{name: "short v1", header: "t=1767607200,v1=" + v1New[:62], secrets: both, want: webhook.ErrMalformedHeader},
		{name: "long v1", header: "t=1767607200,v1=" + v1New + "00", secrets: both, want: webhook.ErrMalformedHeader},
		{name: "empty v1", header: "t=1767607200,v1=", secrets: both, want: webhook.ErrMalformedHeader},
		{name: "non-numeric t", header: "t=now,v1=" + v1New, secrets: both, want: webhook.ErrMalformedHeader},
		{name: "t as RFC 3339", header: "t=2026-01-05T10:00:00Z,v1=" + v1New, secrets: both, want: webhook.ErrMalformedHeader},
		{name: "t beyond int64", header: "t=99999999999999999999,v1=" + v1New, secrets: both, want: webhook.ErrMalformedHeader},
		{name: "negative t", header: "t=-1767607200,v1=" + v1New, secrets: both, want: webhook.ErrMalformedHeader},
		{name: "t with a plus sign", header: "t=+1767607200,v1=" + v1New, secrets: both, want: webhook.ErrMalformedHeader},
		{name: "t with a leading zero", header: "t=01767607200,v1=" + v1New, secrets: both, want: webhook.ErrMalformedHeader},
		{name: "empty t", header: "t=,v1=" + v1New, secrets: both, want: webhook.ErrMalformedHeader},
		{name: "t twice", header: "t=1767607200,t=1767607200,v1=" + v1New, secrets: both, want: webhook.ErrMalformedHeader},
		// PERSONA.md §1, common mistake: several v1 inside one comma set.
		{name: "two v1 in one set", header: "t=1767607200,v1=" + hexMAC(ts, body, oldSecret) + ",v1=" + v1New, secrets: both, want: webhook.ErrMalformedHeader},
		{name: "semicolon separated", header: "t=1767607200;v1=" + v1New, secrets: both, want: webhook.ErrMalformedHeader},
		{name: "trailing comma", header: sigNew + ",", secrets: both, want: webhook.ErrMalformedHeader},
		{name: "element without =", header: sigNew + ",v1", secrets: both, want: webhook.ErrMalformedHeader},
		{name: "empty key", header: sigNew + ",=x", secrets: both, want: webhook.ErrMalformedHeader},
		{name: "bare hex", header: v1New, secrets: both, want: webhook.ErrMalformedHeader},
		{name: "nine sets", header: strings.Repeat(sigNew+" ", 9), secrets: both, want: webhook.ErrMalformedHeader},
		{name: "eight sets", header: strings.Repeat(sigOld+" ", 7) + sigNew, secrets: [][]byte{newSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.body
			if b == nil {
				b = body
			}
			err := webhook.Verify(tt.header, b, tt.secrets, now, tt.tolerance)
			if tt.want == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), v1New) {
				t.Errorf("error %q quotes a signature", err)
			}
		})
	}
}

func hmacHex(msg, secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

func TestParseSignatureHeader(t *testing.T) {
	a := strings.Repeat("ab", 32)
	b := strings.Repeat("0f", 32)
	decode := func(s string) []byte { d, _ := hex.DecodeString(s); return d }
	tests := []struct {
		header string
		want   []webhook.SignatureSet
	}{
		{"t=1767607200,v1=" + a, []webhook.SignatureSet{{Timestamp: 1767607200, Signature: decode(a)}}},
		{"v1=" + a + ",t=1767607200", []webhook.SignatureSet{{Timestamp: 1767607200, Signature: decode(a)}}},
		{"t=0,v1=" + a, []webhook.SignatureSet{{Timestamp: 0, Signature: decode(a)}}},
		{" t=1,v1=" + a + "  t=2 ,v1=" + strings.ToUpper(b) + " ", []webhook.SignatureSet{
			{Timestamp: 1, Signature: decode(a)}, {Timestamp: 2, Signature: decode(b)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			got, err := webhook.ParseSignatureHeader(tt.header)
			if err != nil {
				t.Fatalf("ParseSignatureHeader: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseSignatureHeader = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzParseSignatureHeader feeds the parser arbitrary header values (seeds in
// testdata/fuzz/FuzzParseSignatureHeader). It must never panic, must fail only with its two
// sentinel errors, must never quote a signature in an error, and whatever it accepts must
// re-serialise to a header that parses to the same sets.
func FuzzParseSignatureHeader(f *testing.F) {
	f.Add(webhook.Sign([]byte(`{"data":{}}`), oldSecret, now) + " " + webhook.Sign([]byte(`{"data":{}}`), newSecret, now))
	hexRun := regexp.MustCompile(`[0-9a-fA-F]{16,}`)
	f.Fuzz(func(t *testing.T, header string) {
		sets, err := webhook.ParseSignatureHeader(header)
		if err != nil {
			switch {
			case errors.Is(err, webhook.ErrNotSigned):
				if strings.Trim(header, " \t") != "" {
					t.Fatalf("ErrNotSigned for a non-blank header %q", header)
				}
			case errors.Is(err, webhook.ErrMalformedHeader):
			default:
				t.Fatalf("error %v is neither ErrNotSigned nor ErrMalformedHeader", err)
			}
			if sets != nil {
				t.Fatalf("sets %v returned with error %v", sets, err)
			}
			for _, run := range hexRun.FindAllString(header, -1) {
				if strings.Contains(err.Error(), run) {
					t.Fatalf("error %q quotes the header", err)
				}
			}
			return
		}
		if len(sets) == 0 || len(sets) > 8 {
			t.Fatalf("%d sets", len(sets))
		}
		parts := make([]string, len(sets))
		for i, s := range sets {
			if s.Timestamp < 0 || len(s.Signature) != sha256.Size {
				t.Fatalf("set %d = %v: negative t or not a SHA-256 MAC", i, s)
			}
			parts[i] = s.String()
		}
		canonical := strings.Join(parts, " ")
		again, err := webhook.ParseSignatureHeader(canonical)
		if err != nil {
			t.Fatalf("re-parse %q: %v", canonical, err)
		}
		if !reflect.DeepEqual(again, sets) {
			t.Fatalf("re-parse %q = %v, want %v", canonical, again, sets)
		}
		// Verify must agree with the parser on the header's shape.
		if err := webhook.Verify(header, nil, [][]byte{newSecret}, now, 0); errors.Is(err, webhook.ErrMalformedHeader) || errors.Is(err, webhook.ErrNotSigned) {
			t.Fatalf("Verify calls a parsed header malformed: %v", err)
		}
	})
}

// FuzzSignVerify checks that Sign and Verify agree on any body, secret and time, and that any
// change to the body breaks the signature.
func FuzzSignVerify(f *testing.F) {
	f.Add([]byte(`{"data":{}}`), []byte("wbhsec_test"), int64(1767607200), uint16(3))
	f.Fuzz(func(t *testing.T, body, secret []byte, unix int64, flip uint16) {
		if len(secret) == 0 || unix < 0 {
			return
		}
		at := time.Unix(unix, 0)
		header := webhook.Sign(body, secret, at)
		if err := webhook.Verify(header, body, [][]byte{secret}, at, 0); err != nil {
			t.Fatalf("Verify(Sign(...)) = %v", err)
		}
		if len(body) == 0 {
			return
		}
		changed := bytes.Clone(body)
		changed[int(flip)%len(changed)] ^= 0x80
		if err := webhook.Verify(header, changed, [][]byte{secret}, at, 0); !errors.Is(err, webhook.ErrNoValidSignature) {
			t.Fatalf("Verify of a changed body = %v, want ErrNoValidSignature", err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	body := readFixture(b, "inquiry-started.json")
	for _, bc := range []struct {
		name    string
		header  string
		secrets [][]byte
	}{
		{"one_set", webhook.Sign(body, newSecret, now), [][]byte{newSecret}},
		{"rotation", webhook.Sign(body, oldSecret, now) + " " + webhook.Sign(body, newSecret, now), [][]byte{oldSecret, newSecret}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := webhook.Verify(bc.header, body, bc.secrets, now, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
