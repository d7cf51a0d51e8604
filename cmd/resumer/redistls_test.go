package main

import (
	"context"
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/resumer/resumer/internal/redisconn"
	"github.com/resumer/resumer/internal/testenv"
)

// TestConfigRedisTLSRejects checks that the RESUMER_REDIS_TLS_* files are checked at start-up,
// each error naming the variable: files beside a URL without TLS, an unreadable CA file, a
// certificate without its key and a key without its certificate.
func TestConfigRedisTLSRejects(t *testing.T) {
	certs := testenv.NewTLSCerts(t)
	const tlsURL = "rediss://redis.example:6380/0"
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"CA without rediss", map[string]string{"RESUMER_REDIS_TLS_CA_FILE": certs.CAFile}, "RESUMER_REDIS_TLS_CA_FILE: invalid value: TLS files given for a URL without TLS"},
		{"CA beside a plain sentinel URL", map[string]string{"RESUMER_REDIS_URL": "redis+sentinel://s1:26379/m/0", "RESUMER_REDIS_TLS_CA_FILE": certs.CAFile}, "without TLS"},
		{"missing CA file", map[string]string{"RESUMER_REDIS_URL": tlsURL, "RESUMER_REDIS_TLS_CA_FILE": certs.CAFile + ".missing"}, "RESUMER_REDIS_TLS_CA_FILE: invalid value: read CA file"},
		{"CA file not PEM", map[string]string{"RESUMER_REDIS_URL": tlsURL, "RESUMER_REDIS_TLS_CA_FILE": certs.ClientKeyFile}, "no PEM certificate"},
		{"cert without key", map[string]string{"RESUMER_REDIS_URL": tlsURL, "RESUMER_REDIS_TLS_CERT_FILE": certs.ClientCertFile}, "RESUMER_REDIS_TLS_KEY_FILE: invalid value: client certificate"},
		{"key without cert", map[string]string{"RESUMER_REDIS_URL": tlsURL, "RESUMER_REDIS_TLS_KEY_FILE": certs.ClientKeyFile}, "RESUMER_REDIS_TLS_KEY_FILE: invalid value: client key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := loadConfig("test", nil, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("loadConfig = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestConfigRedisTLS runs the service's own Redis opening (openRedis) on the configuration
// read from RESUMER_REDIS_URL and the RESUMER_REDIS_TLS_* files against a redis-server that
// speaks only TLS and requires a client certificate.
func TestConfigRedisTLS(t *testing.T) {
	certs := testenv.NewTLSCerts(t)
	srv := testenv.StartRedisTLS(t, testenv.RedisTLS{
		CertFile: certs.ServerCertFile, KeyFile: certs.ServerKeyFile, CAFile: certs.CAFile,
		AuthClients: "yes", Client: &tls.Config{RootCAs: certs.CA, Certificates: []tls.Certificate{certs.Client}},
	})
	cfg, _, err := loadConfig("test", nil, env(map[string]string{
		"RESUMER_REDIS_URL":           srv.URL(),
		"RESUMER_REDIS_TLS_CA_FILE":   certs.CAFile,
		"RESUMER_REDIS_TLS_CERT_FILE": certs.ClientCertFile,
		"RESUMER_REDIS_TLS_KEY_FILE":  certs.ClientKeyFile,
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := redisconn.TLSFiles{CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile}
	if cfg.RedisTLS != want {
		t.Fatalf("RedisTLS = %+v, want %+v", cfg.RedisTLS, want)
	}
	rdb, err := openRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := redisconn.Ping(ctx, rdb); err != nil {
		t.Fatalf("Ping over mutual TLS: %v", err)
	}
	if err := pingRedis(ctx, cfg.RedisURL, cfg.RedisTLS); err != nil {
		t.Fatalf("pingRedis (resumer dev's check) over mutual TLS: %v", err)
	}
}

// TestBenchRedisTLS runs `resumer bench --quick memory` against a redis-server that speaks
// only TLS and requires a client certificate, with the --redis-tls-* flags: the run's Redis
// connection trusts the CA and sends the certificate. Without the client certificate, or
// with the files beside a plain URL, the run fails at once, before any scenario.
func TestBenchRedisTLS(t *testing.T) {
	certs := testenv.NewTLSCerts(t)
	srv := testenv.StartRedisTLS(t, testenv.RedisTLS{
		CertFile: certs.ServerCertFile, KeyFile: certs.ServerKeyFile, CAFile: certs.CAFile,
		AuthClients: "yes", Client: &tls.Config{RootCAs: certs.CA, Certificates: []tls.Certificate{certs.Client}},
	})
	bench := func(t *testing.T, args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var stdout, stderr strings.Builder
		err := benchCommand(ctx, append([]string{"--quick", "--quiet", "--inprocess-loadgen"}, args...), &stdout, &stderr)
		if stderr.Len() > 0 {
			t.Logf("stderr: %s", stderr.String())
		}
		return stdout.String(), err
	}

	t.Run("CA and client certificate", func(t *testing.T) {
		out, err := bench(t, "--redis-url", srv.URL(), "--redis-tls-ca-file", certs.CAFile,
			"--redis-tls-cert-file", certs.ClientCertFile, "--redis-tls-key-file", certs.ClientKeyFile, "memory")
		if err != nil {
			t.Fatalf("bench memory over TLS: %v\n%s", err, out)
		}
		if !strings.Contains(out, "== memory:") {
			t.Errorf("report has no memory table:\n%s", out)
		}
	})
	t.Run("CA only", func(t *testing.T) {
		_, err := bench(t, "--redis-url", srv.URL()+"?dial_timeout=2s&read_timeout=2s&max_retries=-1",
			"--redis-tls-ca-file", certs.CAFile, "memory")
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("bench without the client certificate = %v, want the server's refusal", err)
		}
	})
	t.Run("files beside a plain URL", func(t *testing.T) {
		_, err := bench(t, "--redis-url", "redis://127.0.0.1:1/0", "--redis-tls-ca-file", certs.CAFile, "memory")
		if err == nil || !strings.Contains(err.Error(), "redis tls") || !strings.Contains(err.Error(), "without TLS") {
			t.Fatalf("bench with a CA file and a redis:// URL = %v, want a redis tls error", err)
		}
	})
}
