package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/state"
)

// failFast makes a client give up after one attempt, so that a test of a failing connection
// sees the first error instead of retries.
const failFast = "dial_timeout=2s&read_timeout=2s&write_timeout=2s&max_retries=-1"

// TestTLSSingle talks to a redis-server that speaks only TLS, with a certificate from a
// private CA, through the constructor the service uses: trusting the CA, it serves commands
// and the state store; trusting only the system's roots, it fails on the certificate; a
// plain redis:// URL to the TLS port fails promptly instead of hanging.
func TestTLSSingle(t *testing.T) {
	certs := testenv.NewTLSCerts(t)
	srv := testenv.StartRedisTLS(t, testenv.RedisTLS{
		CertFile: certs.ServerCertFile, KeyFile: certs.ServerKeyFile, CAFile: certs.CAFile,
		AuthClients: "no", Client: &tls.Config{RootCAs: certs.CA},
	})
	url := srv.URL()
	if !strings.HasPrefix(url, "rediss://127.0.0.1:") {
		t.Fatalf("server URL %s: want rediss://127.0.0.1:<port>/0", url)
	}

	t.Run("trusting the CA", func(t *testing.T) {
		c, mode, err := NewWithTLS(url, TLSFiles{CAFile: certs.CAFile})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if mode != Single {
			t.Errorf("mode = %s, want %s", mode, Single)
		}
		useStore(t, c)
	})

	t.Run("system roots only", func(t *testing.T) {
		c, _, err := New(url + "?" + failFast)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = pingWithin(t, c, 10*time.Second)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("Ping = %v, want a certificate verification error (x509.UnknownAuthorityError)", err)
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %q does not say it is about the certificate", err)
		}
	})

	t.Run("plain URL to the TLS port", func(t *testing.T) {
		plain := "redis://" + strings.TrimPrefix(url, "rediss://")
		c, _, err := New(plain + "?" + failFast)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		err = pingWithin(t, c, 10*time.Second)
		if err == nil {
			t.Fatal("Ping over plain TCP to a TLS-only port succeeded")
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Ping hung until the test's deadline: %v", err)
		}
		t.Logf("plain redis:// to the TLS port failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	})
}

// TestTLSMutual talks to a redis-server that requires client certificates
// (tls-auth-clients yes): with the client certificate and key files the service connects and
// uses the store; with the CA alone the server refuses it.
func TestTLSMutual(t *testing.T) {
	certs := testenv.NewTLSCerts(t)
	srv := testenv.StartRedisTLS(t, testenv.RedisTLS{
		CertFile: certs.ServerCertFile, KeyFile: certs.ServerKeyFile, CAFile: certs.CAFile,
		AuthClients: "yes", Client: &tls.Config{RootCAs: certs.CA, Certificates: []tls.Certificate{certs.Client}},
	})

	t.Run("with a client certificate", func(t *testing.T) {
		c, _, err := NewWithTLS(srv.URL(), TLSFiles{CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		useStore(t, c)
	})

	t.Run("without a client certificate", func(t *testing.T) {
		c, _, err := NewWithTLS(srv.URL()+"?"+failFast, TLSFiles{CAFile: certs.CAFile})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = pingWithin(t, c, 10*time.Second)
		if err == nil {
			t.Fatal("Ping without a client certificate succeeded against tls-auth-clients yes")
		}
		if errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Ping = %v, want the server's refusal of a missing client certificate", err)
		}
		t.Logf("without a client certificate: %v", err)
	})
}

// TestTLSFilesApplyRejects checks the files' errors: a URL without TLS, an unreadable or
// empty CA file, half a client key pair, a key pair that does not match.
func TestTLSFilesApplyRejects(t *testing.T) {
	certs := testenv.NewTLSCerts(t)
	other := testenv.NewTLSCerts(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url string
		files     TLSFiles
		want      string
	}{
		{"plain URL", "redis://127.0.0.1:6379/0", TLSFiles{CAFile: certs.CAFile}, "without TLS"},
		{"plain sentinel URL", "redis+sentinel://127.0.0.1:26379/m", TLSFiles{CAFile: certs.CAFile}, "without TLS"},
		{"missing CA file", "rediss://127.0.0.1:6379/0", TLSFiles{CAFile: filepath.Join(t.TempDir(), "none.pem")}, "read CA file"},
		{"CA file without PEM", "rediss://127.0.0.1:6379/0", TLSFiles{CAFile: notPEM}, "no PEM certificate"},
		{"cert without key", "rediss://127.0.0.1:6379/0", TLSFiles{CertFile: certs.ClientCertFile}, "without its key"},
		{"key without cert", "rediss://127.0.0.1:6379/0", TLSFiles{KeyFile: certs.ClientKeyFile}, "without its certificate"},
		{"mismatched pair", "rediss://127.0.0.1:6379/0", TLSFiles{CertFile: certs.ClientCertFile, KeyFile: other.ClientKeyFile}, "load client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, _, err := Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			before := opts.TLSConfig
			err = tc.files.Apply(opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply = %v, want an error mentioning %q", err, tc.want)
			}
			if opts.TLSConfig != before {
				t.Error("a failed Apply changed the options")
			}
			if _, _, err := NewWithTLS(tc.url, tc.files); err == nil {
				t.Error("NewWithTLS succeeded")
			}
		})
	}

	t.Run("sentinel and cluster keep per-node names", func(t *testing.T) {
		for _, u := range []string{"rediss+sentinel://127.0.0.1:26379/m", "rediss+cluster://127.0.0.1:7000"} {
			opts, _, err := Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			if err := (TLSFiles{CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile}).Apply(opts); err != nil {
				t.Fatalf("%s: %v", u, err)
			}
			if opts.TLSConfig.RootCAs == nil || len(opts.TLSConfig.Certificates) != 1 || opts.TLSConfig.ServerName != "" {
				t.Errorf("%s: TLS config %+v: want the CA, one client certificate and no fixed server name", u, opts.TLSConfig)
			}
		}
	})
}

// useStore does a SET and GET on c, then checks the state store's write probe, applies an
// event and reads its inquiry back: a real store round trip over c's connection.
func useStore(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prefix := testenv.Prefix(t)
	if err := Ping(ctx, c); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := c.Set(ctx, prefix+":tls", "over tls", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(ctx, prefix+":tls").Result(); err != nil || got != "over tls" {
		t.Fatalf("GET = %q, %v; want %q", got, err, "over tls")
	}
	store, err := state.New(c, state.Config{Prefix: prefix, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Ping(ctx); err != nil {
		t.Fatalf("store Ping: %v", err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	id := "inq_tls" + strconv.FormatInt(at.UnixNano(), 36)
	ev := &persona.Event{ID: "evt_tls" + strconv.FormatInt(at.UnixNano(), 36), Name: "inquiry.created", CreatedAt: at,
		InquiryID: id, PayloadType: "inquiry", Inquiry: &persona.Inquiry{
			ID: id, Status: persona.StatusCreated, TemplateID: "itmpl_tls", CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour),
		}}
	if out, err := store.Apply(ctx, ev); err != nil || out != state.OutcomeApplied {
		t.Fatalf("Apply = %s, %v; want %s", out, err, state.OutcomeApplied)
	}
	inq, err := store.Inquiry(ctx, id)
	if err != nil {
		t.Fatalf("Inquiry: %v", err)
	}
	if inq.Status != persona.StatusCreated || !inq.ExpiresAt.Equal(at.Add(24*time.Hour)) {
		t.Errorf("inquiry read back: status %s, expires %v; want %s, %v", inq.Status, inq.ExpiresAt, persona.StatusCreated, at.Add(24*time.Hour))
	}
}

// pingWithin is Ping bounded by d, the bound a test puts on a connection that must fail.
func pingWithin(t *testing.T, c redis.UniversalClient, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return Ping(ctx, c)
}
