package link

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func TestHostedFlowURL(t *testing.T) {
	tests := []struct {
		name                        string
		base, inquiry, token, redir string
		want                        string
	}{
		{
			name: "defaults", inquiry: "inq_123", token: "tok",
			want: "https://inquiry.withpersona.com/verify?inquiry-id=inq_123&session-token=tok",
		},
		{
			name: "escaped", inquiry: "inq_1", token: "a.b+c/d=&e", redir: "https://app.example/done?x=1&y=2",
			want: "https://inquiry.withpersona.com/verify?inquiry-id=inq_1&redirect-uri=https%3A%2F%2Fapp.example%2Fdone%3Fx%3D1%26y%3D2&session-token=a.b%2Bc%2Fd%3D%26e",
		},
		{
			name: "custom base keeps its query", base: "https://verify.example.com/flow?environment-id=env_1", inquiry: "inq_1",
			want: "https://verify.example.com/flow?environment-id=env_1&inquiry-id=inq_1",
		},
		{
			name: "one-time link style, no token", inquiry: "inq_1",
			want: "https://inquiry.withpersona.com/verify?inquiry-id=inq_1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HostedFlowURL(tt.base, tt.inquiry, tt.token, tt.redir); got != tt.want {
				t.Errorf("HostedFlowURL = %s\nwant             %s", got, tt.want)
			}
		})
	}
}

func TestSignerRoundTrip(t *testing.T) {
	s := Signer{Secret: testSecret, PublicURL: "https://resume.example.com/"}
	exp := time.Date(2026, 1, 6, 10, 0, 0, 0, time.UTC)
	link := s.Sign("inq_abc", "6h", exp.Add(400*time.Millisecond))
	token, ok := strings.CutPrefix(link, "https://resume.example.com/r/")
	if !ok {
		t.Fatalf("link %q does not start with the public url and /r/", link)
	}
	if strings.ContainsAny(token, "+/=") {
		t.Errorf("token %q is not unpadded URL-safe base64", token)
	}
	got, err := s.Verify(token, exp.Add(-time.Second))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := Claims{InquiryID: "inq_abc", Stage: "6h", ExpiresAt: exp}
	if got != want {
		t.Errorf("claims = %+v, want %+v", got, want)
	}
}

// TestRedirectTokenFormatIsStable pins the token format: links already in mailboxes must keep
// verifying after an upgrade. The token was computed independently of this package.
func TestRedirectTokenFormatIsStable(t *testing.T) {
	const want = "AcD05pUNAjZoaW5xXzNkS0hRelBGckJiQlNEYXhnc25ESkZyVeCfqoCHaqdLmUbgbINoX3g"
	s := Signer{Secret: testSecret}
	if got := s.Token("inq_3dKHQzPFrBbBSDaxgsnDJFrU", "6h", time.Unix(1767693600, 0)); got != want {
		t.Errorf("Token = %s, want %s", got, want)
	}
}

func TestSignerVerifyFailures(t *testing.T) {
	s := Signer{Secret: testSecret, PublicURL: "https://resume.example.com"}
	exp := time.Date(2026, 1, 6, 10, 0, 0, 0, time.UTC)
	now := exp.Add(-time.Hour)
	token := s.Token("inq_abc", "1h", exp)
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}

	tests := []struct {
		name   string
		signer Signer
		token  string
		now    time.Time
		want   error
	}{
		{name: "tampered payload", signer: s, token: flip(len(raw) - redirectMACLen - 1), now: now, want: ErrSignature},
		{name: "tampered expiry", signer: s, token: flip(1), now: now, want: ErrSignature},
		{name: "tampered mac", signer: s, token: flip(len(raw) - 1), now: now, want: ErrSignature},
		{name: "wrong secret", signer: Signer{Secret: []byte(strings.Repeat("x", 32))}, token: token, now: now, want: ErrSignature},
		{name: "short secret verifies nothing", signer: Signer{Secret: testSecret[:16]}, token: token, now: now, want: ErrSignature},
		{name: "expired at expiry", signer: s, token: token, now: exp, want: ErrExpired},
		{name: "expired after", signer: s, token: token, now: exp.Add(time.Hour), want: ErrExpired},
		{name: "malformed base64", signer: s, token: "not*base64!", now: now, want: ErrMalformed},
		{name: "padded base64", signer: s, token: token + "=", now: now, want: ErrMalformed},
		{name: "empty", signer: s, token: "", now: now, want: ErrMalformed},
		{name: "truncated", signer: s, token: token[:20], now: now, want: ErrMalformed},
		{name: "unknown version", signer: s, token: flip(0), now: now, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.signer.Verify(tt.token, tt.now)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignerValidate(t *testing.T) {
	tests := []struct {
		name    string
		s       Signer
		wantErr bool
	}{
		{"ok", Signer{Secret: testSecret, PublicURL: "https://resume.example.com"}, false},
		{"short secret", Signer{Secret: testSecret[:31], PublicURL: "https://resume.example.com"}, true},
		{"relative url", Signer{Secret: testSecret, PublicURL: "/resume"}, true},
		{"other scheme", Signer{Secret: testSecret, PublicURL: "ftp://resume.example.com"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestSignerSignPanicsOnShortSecret(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Sign with a short secret did not panic")
		}
	}()
	Signer{Secret: []byte("short")}.Sign("inq_1", "6h", time.Now())
}

// FuzzVerify checks that Verify never panics on any token, and that any token Sign
// makes verifies back to what was signed while unexpired.
func FuzzVerify(f *testing.F) {
	s := Signer{Secret: testSecret, PublicURL: "https://resume.example.com"}
	exp := time.Date(2026, 1, 6, 10, 0, 0, 0, time.UTC)
	f.Add(s.Token("inq_abc", "6h", exp), "inq_abc", "6h", exp.Unix())
	f.Add("AQ", "", "", int64(0))
	f.Add("not*base64!", "inq_\x00\xff", "1h", int64(-1))
	f.Fuzz(func(t *testing.T, token, inquiryID, stage string, expUnix int64) {
		now := time.Unix(expUnix, 0).Add(-time.Minute)
		_, _ = s.Verify(token, now) // must not panic

		if expUnix < -1<<40 || expUnix > 1<<40 {
			return // beyond time.Time's comfortable range: only the no-panic property applies
		}
		signed := s.Token(inquiryID, stage, time.Unix(expUnix, 0))
		c, err := s.Verify(signed, now)
		if err != nil {
			t.Fatalf("Verify(Token(%q, %q, %d)) = %v", inquiryID, stage, expUnix, err)
		}
		if c.InquiryID != inquiryID || c.Stage != stage || c.ExpiresAt.Unix() != expUnix {
			t.Fatalf("claims %+v, want %q %q %d", c, inquiryID, stage, expUnix)
		}
	})
}

func TestFormToken(t *testing.T) {
	s := Signer{Secret: testSecret, PublicURL: "https://resume.example.com"}
	now := time.Date(2026, 1, 6, 10, 0, 0, 0, time.UTC)
	lt := s.Token("inq_abc", "6h", now.Add(time.Hour))
	other := s.Token("inq_xyz", "6h", now.Add(time.Hour))
	ft := s.FormToken(lt, now.Add(10*time.Minute))
	if err := s.VerifyForm(lt, ft, now); err != nil {
		t.Fatalf("VerifyForm of a fresh token: %v", err)
	}
	exp, mac, _ := strings.Cut(ft, ".")
	for _, tc := range []struct {
		name   string
		signer Signer
		link   string
		form   string
		now    time.Time
		want   error
	}{
		{"expired", s, lt, ft, now.Add(10 * time.Minute), ErrFormExpired},
		{"other link", s, other, ft, now, ErrFormInvalid},
		{"empty", s, lt, "", now, ErrFormInvalid},
		{"no dot", s, lt, exp + mac, now, ErrFormInvalid},
		{"later expiry", s, lt, "9" + exp + "." + mac, now, ErrFormInvalid},
		{"signed expiry altered", s, lt, exp[:len(exp)-1] + "9." + mac, now, ErrFormInvalid},
		{"negative", s, lt, "-" + exp + "." + mac, now, ErrFormInvalid},
		{"bad base64", s, lt, exp + ".!!", now, ErrFormInvalid},
		{"link mac reused", s, lt, exp + "." + ID(lt), now, ErrFormInvalid},
		{"other secret", Signer{Secret: []byte(strings.Repeat("z", 32))}, lt, ft, now, ErrFormInvalid},
		{"short secret", Signer{Secret: []byte("short")}, lt, ft, now, ErrFormInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.signer.VerifyForm(tc.link, tc.form, tc.now); !errors.Is(err, tc.want) {
				t.Errorf("VerifyForm = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestID(t *testing.T) {
	s := Signer{Secret: testSecret}
	now := time.Date(2026, 1, 6, 10, 0, 0, 0, time.UTC)
	a, b := s.Token("inq_abc", "6h", now), s.Token("inq_abc", "1h", now)
	if ID(a) == "" || ID(a) != ID(s.Token("inq_abc", "6h", now)) || ID(a) == ID(b) {
		t.Errorf("ID(a)=%q ID(b)=%q", ID(a), ID(b))
	}
	if ID("!!") != "" || ID("AAAA") != "" {
		t.Error("ID of a malformed token is not empty")
	}
}

func FuzzVerifyForm(f *testing.F) {
	s := Signer{Secret: testSecret}
	f.Add("link", s.FormToken("link", time.Unix(2e9, 0)))
	f.Add("", "1.")
	f.Fuzz(func(t *testing.T, lt, ft string) {
		err := s.VerifyForm(lt, ft, time.Unix(1e9, 0))
		if err == nil && ft != s.FormToken(lt, time.Unix(mustExp(ft), 0)) {
			t.Fatalf("accepted %q for %q", ft, lt)
		}
	})
}

func mustExp(ft string) int64 {
	e, _, _ := strings.Cut(ft, ".")
	var n int64
	for _, c := range e {
		n = n*10 + int64(c-'0')
	}
	return n
}
