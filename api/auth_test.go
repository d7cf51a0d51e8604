package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/persona/personatest"
)

func TestParseAPIKeys(t *testing.T) {
	h1, h2 := HashAPIKey("one"), HashAPIKey("two")
	t.Run("valid", func(t *testing.T) {
		keys, err := ParseAPIKeys("# customer backends\n" +
			"name=acme sha256=" + h1 + " scopes=inquiries:read,sessions:create reference_prefix=acme- ;" +
			"  name=old.key_2 sha256=" + strings.ToUpper(h2) + "\tscopes=sessions:create revoked=true\n\n;")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 {
			t.Fatalf("%d keys, want 2: %+v", len(keys), keys)
		}
		a, b := keys[0], keys[1]
		if a.Name != "acme" || hex.EncodeToString(a.Hash[:]) != h1 || a.ReferencePrefix != "acme-" || a.Revoked ||
			!a.allows(ScopeInquiriesRead) || !a.allows(ScopeSessionsCreate) {
			t.Errorf("first key %+v", a)
		}
		if b.Name != "old.key_2" || hex.EncodeToString(b.Hash[:]) != h2 || !b.Revoked || b.allows(ScopeInquiriesRead) {
			t.Errorf("second key %+v", b)
		}
	})
	t.Run("empty", func(t *testing.T) {
		keys, err := ParseAPIKeys(" \n# none yet\n")
		if err != nil || len(keys) != 0 {
			t.Errorf("ParseAPIKeys(blank) = %v, %v", keys, err)
		}
	})
	for _, tc := range []struct{ name, in, want string }{
		{"missing sha256", "name=a scopes=inquiries:read", "missing field sha256"},
		{"missing scopes", "name=a sha256=" + h1, "missing field scopes"},
		{"missing name", "sha256=" + h1 + " scopes=inquiries:read", "missing field name"},
		{"short hash", "name=a sha256=abcd scopes=inquiries:read", "sha256: want 64 hex digits"},
		{"not hex", "name=a sha256=" + strings.Repeat("z", 64) + " scopes=inquiries:read", "sha256: want 64 hex digits"},
		{"unknown scope", "name=a sha256=" + h1 + " scopes=inquiries:write", `unknown scope "inquiries:write"`},
		{"unknown field", "name=a sha256=" + h1 + " scopes=inquiries:read prefix=x", `unknown field "prefix"`},
		{"field twice", "name=a name=b sha256=" + h1 + " scopes=inquiries:read", "field name given twice"},
		{"no value", "name=a sha256=" + h1 + " scopes=", "want name=value"},
		{"bad name", "name=a/b sha256=" + h1 + " scopes=inquiries:read", "name \"a/b\""},
		{"bad revoked", "name=a sha256=" + h1 + " scopes=inquiries:read revoked=yes", "revoked: \"yes\""},
		{"duplicate name", "name=a sha256=" + h1 + " scopes=inquiries:read; name=a sha256=" + h2 + " scopes=inquiries:read", "key name a used twice"},
		{"duplicate hash", "name=a sha256=" + h1 + " scopes=inquiries:read; name=b sha256=" + h1 + " scopes=inquiries:read", "same hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseAPIKeys(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseAPIKeys = %v, %v; want an error containing %q", keys, err, tc.want)
			}
		})
	}
}

func TestHashAndNewAPIKey(t *testing.T) {
	sum := sha256.Sum256([]byte("secret"))
	if got := HashAPIKey("secret"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("HashAPIKey = %s", got)
	}
	k1, h1, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, _, _ := NewAPIKey()
	if !strings.HasPrefix(k1, "rsk_") || len(k1) != 4+43 || k1 == k2 || h1 != HashAPIKey(k1) {
		t.Errorf("NewAPIKey = %q, %q (second %q)", k1, h1, k2)
	}
}

// TestAuthentication covers the keys of PERSONA.md §8: missing, wrong, revoked, wrong scope
// and wrong reference prefix (answered 404 like an unknown inquiry), on both /v1/ routes.
func TestAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	acme := e.create(personatest.InquiryParams{ReferenceID: "acme-user-1"})
	other := e.create(personatest.InquiryParams{ReferenceID: "globex-user-1"})
	acmecorp := e.create(personatest.InquiryParams{ReferenceID: "acmecorp-user-1"})
	exact := e.create(personatest.InquiryParams{ReferenceID: "acme"})
	for _, tc := range []struct {
		name   string
		method string
		id     string
		header string // Authorization
		status int
		code   Code
	}{
		{"get without key", "GET", acme, "", 401, CodeUnauthorized},
		{"post without key", "POST", acme, "", 401, CodeUnauthorized},
		{"wrong key", "GET", acme, "Bearer key-nobody", 401, CodeUnauthorized},
		{"basic scheme", "GET", acme, "Basic a2V5LWZ1bGw6", 401, CodeUnauthorized},
		{"empty bearer", "POST", acme, "Bearer ", 401, CodeUnauthorized},
		{"huge bearer", "GET", acme, "Bearer " + strings.Repeat("x", 2000), 401, CodeUnauthorized},
		{"revoked key", "POST", acme, "Bearer key-revoked", 401, CodeUnauthorized},
		{"read key creates", "POST", acme, "Bearer key-reader", 403, CodeForbidden},
		{"create key reads", "GET", acme, "Bearer key-creator", 403, CodeForbidden},
		{"prefix key reads other customer", "GET", other, "Bearer key-acme", 404, CodeNotFound},
		{"prefix key creates for other customer", "POST", other, "Bearer key-acme", 404, CodeNotFound},
		{"bare prefix reads longer name", "GET", acmecorp, "Bearer key-bare", 404, CodeNotFound},
		{"bare prefix creates for longer name", "POST", acmecorp, "Bearer key-bare", 404, CodeNotFound},
		{"bare prefix reads own customer", "GET", acme, "Bearer key-bare", 200, ""},
		{"bare prefix reads exact id", "GET", exact, "Bearer key-bare", 200, ""},
		{"prefix key reads own customer", "GET", acme, "Bearer key-acme", 200, ""},
		{"prefix key creates for own customer", "POST", acme, "Bearer key-acme", 201, ""},
		{"lowercase scheme", "GET", other, "bearer key-full", 200, ""},
		{"reader reads", "GET", other, "Bearer key-reader", 200, ""},
		{"creator creates", "POST", other, "Bearer key-creator", 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/v1/inquiries/" + tc.id
			if tc.method == "POST" {
				path += "/sessions"
			}
			req, _ := http.NewRequest(tc.method, e.http.URL+path, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			r := e.send(req)
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
			}
			if tc.code == "" {
				if r.status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
				}
				return
			}
			wantProblem(t, r, tc.status, tc.code)
			challenge := r.header.Get("WWW-Authenticate")
			if (tc.status == 401) != strings.HasPrefix(challenge, `Bearer realm="resumer"`) {
				t.Errorf("WWW-Authenticate %q with status %d", challenge, tc.status)
			}
		})
	}
	if n := e.sim.PathRequests(resumePath(other)); n != 1 {
		t.Errorf("persona resumed the other customer's inquiry %d times, want once (by the creator key)", n)
	}
	if !strings.Contains(e.logs.String(), `"note":"revoked api key"`) || !strings.Contains(e.logs.String(), `"key":"revoked"`) {
		t.Errorf("the use of a revoked key was not logged by name")
	}
}

// TestNewRejectsBadOptions checks New's validation.
func TestNewRejectsBadOptions(t *testing.T) {
	e := newEnv(t, nil)
	base := Options{Store: e.store, Persona: e.server.persona}
	for _, tc := range []struct {
		name string
		edit func(*Options)
	}{
		{"no store", func(o *Options) { o.Store = nil }},
		{"no persona", func(o *Options) { o.Persona = nil }},
		{"negative min remaining", func(o *Options) { o.MinRemaining = -1 }},
		{"negative mint limit", func(o *Options) { o.MintLimit = -1 }},
		{"relative hosted flow url", func(o *Options) { o.HostedFlowURL = "/verify" }},
		{"bad redirect uri", func(o *Options) { o.RedirectURI = "ftp://x" }},
		{"short redirect secret", func(o *Options) {
			o.Redirect = &link.Signer{Secret: []byte("short"), PublicURL: "https://r.example.com"}
		}},
		{"duplicate key", func(o *Options) { o.Keys = append(e.server.keys[:1:1], e.server.keys[0]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			if s, err := New(o); err == nil {
				t.Errorf("New = %v, want an error", s)
			}
		})
	}
	if _, err := New(base); err != nil {
		t.Errorf("New(minimal) = %v", err)
	}
}

func TestAPIKeyCovers(t *testing.T) {
	for _, tc := range []struct {
		prefix, ref string
		want        bool
	}{
		{"", "anything", true},
		{"", "", true},
		{"acme", "acme", true},
		{"acme", "acme-1", true},
		{"acme", "acme_1", true},
		{"acme", "acme:1", true},
		{"acme", "acme/1", true},
		{"acme", "acme.1", true},
		{"acme", "acmecorp-1", false},
		{"acme", "acme1", false},
		{"acme", "acm", false},
		{"acme", "", false},
		{"acme", "globex-acme-1", false},
		{"acme-", "acme-1", true},
		{"acme-", "acme-", true},
		{"acme-", "acme", false},
		{"acme-", "acme_1", false},
		{"acme-eu", "acme-eu", true},
		{"acme-eu", "acme-eu-7", true},
		{"acme-eu", "acme-euro-7", false},
	} {
		k := APIKey{ReferencePrefix: tc.prefix}
		if got := k.covers(tc.ref); got != tc.want {
			t.Errorf("prefix %q covers %q = %v, want %v", tc.prefix, tc.ref, got, tc.want)
		}
	}
}

// TestUncoveredInquiryLooksUnknown: a key cannot tell another tenant's inquiry from one that
// does not exist (no 403-versus-404 oracle). The two answers are the same but for the id.
func TestUncoveredInquiryLooksUnknown(t *testing.T) {
	e := newEnv(t, nil)
	other := e.create(personatest.InquiryParams{ReferenceID: "globex-user-1"})
	const unknown = "inq_doesnotexist1"
	for _, method := range []string{"GET", "POST"} {
		answer := func(id string) string {
			path := "/v1/inquiries/" + id
			if method == "POST" {
				path += "/sessions"
			}
			req, _ := http.NewRequest(method, e.http.URL+path, nil)
			req.Header.Set("Authorization", "Bearer key-acme")
			r := e.send(req)
			wantProblem(t, r, http.StatusNotFound, CodeNotFound)
			return strings.ReplaceAll(string(r.body), id, "ID") + fmt.Sprint(r.header.Get("Content-Type"), r.header.Get("Cache-Control"))
		}
		if a, b := answer(other), answer(unknown); a != b {
			t.Errorf("%s: uncovered inquiry answered\n%s\nunknown inquiry answered\n%s", method, a, b)
		}
	}
	if n := e.sim.PathRequests(resumePath(other)); n != 0 {
		t.Errorf("persona resumed the uncovered inquiry %d times", n)
	}
	if !strings.Contains(e.logs.String(), `"note":"outside reference prefix"`) {
		t.Errorf("the log does not tell the operator why: %s", e.logs.String())
	}
}
