package redisconn

import (
	"context"
	"crypto/tls"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/clustertest"
	"github.com/resumer/resumer/internal/testenv"
)

// TestTLSSentinel talks to a Sentinel set whose every node (primary, replica, three
// Sentinels) speaks only TLS, with certificates from a private CA, through the constructor
// the service uses and a rediss+sentinel URL: trusting only the system's roots it fails on
// the certificate; trusting the CA, it serves commands and the state store; after the primary is killed and the Sentinels promote the replica (electing
// over TLS), the same client reaches the new primary, over TLS since no node has a plain
// port, with the earlier write intact and the store usable.
func TestTLSSentinel(t *testing.T) {
	certs := testenv.NewTLSCerts(t)
	s := clustertest.SentinelTLST(t, clustertest.SentinelTLS{
		CertFile: certs.ServerCertFile, KeyFile: certs.ServerKeyFile, CAFile: certs.CAFile,
		Client: &tls.Config{RootCAs: certs.CA},
	})
	url := s.URL()
	if !strings.HasPrefix(url, "rediss+sentinel://127.0.0.1:") || !strings.HasSuffix(url, "/"+clustertest.MasterName+"/0") {
		t.Fatalf("set URL %s: want rediss+sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>/mymaster/0", url)
	}
	c, mode, err := NewWithTLS(url, TLSFiles{CAFile: certs.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if mode != Sentinel {
		t.Fatalf("mode = %s, want %s", mode, Sentinel)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	first, err := s.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("system roots only", func(t *testing.T) {
		c, _, err := New(url + "?" + failFast)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = pingWithin(t, c, 10*time.Second)
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Ping = %v, want a certificate verification error from the Sentinels", err)
		}
		t.Logf("without the CA: %v", err)
	})
	t.Run("before failover", func(t *testing.T) {
		useStore(t, c)
		servedBy(t, ctx, c, first)
	})

	key := testenv.Prefix(t) + ":kept"
	if err := c.Set(ctx, key, "before failover", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if n, err := c.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 5000 = %d, %v; want the replica to have the write", n, err)
	}
	start := time.Now()
	first.Kill()
	if err := s.WaitHealthy(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	next, err := s.Primary(ctx)
	if err != nil || next == first {
		t.Fatalf("primary after failover: %v, %v; want the replica promoted", next, err)
	}
	t.Logf("the Sentinels promoted %s %v after %s was killed", next.Addr(), time.Since(start).Round(time.Millisecond), first.Addr())

	t.Run("after failover", func(t *testing.T) {
		// The client learns of the new primary from the Sentinels' switch-master message or
		// its first failures; the service retries, so the test does too.
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, err := c.Get(ctx, key).Result()
			if err == nil && got == "before failover" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s through the new primary = %q, %v; want %q", key, got, err, "before failover")
			}
			time.Sleep(50 * time.Millisecond)
		}
		servedBy(t, ctx, c, next)
		useStore(t, c)
	})
}

// servedBy checks that c's commands reach node, a TLS-only data node of a Sentinel set: the
// server answering has node's port as its tls-port, no plain port, and the master role.
func servedBy(t *testing.T, ctx context.Context, c redis.UniversalClient, node *clustertest.RedisNode) {
	t.Helper()
	ports, err := c.ConfigGet(ctx, "*port").Result()
	if err != nil {
		t.Fatalf("CONFIG GET *port: %v", err)
	}
	if ports["tls-port"] != strconv.Itoa(node.Port) || ports["port"] != "0" {
		t.Errorf("served by a node with port %q and tls-port %q; want port 0 and tls-port %d (%s)", ports["port"], ports["tls-port"], node.Port, node.Addr())
	}
	role, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(role) == 0 || role[0] != "master" {
		t.Errorf("ROLE = %v, %v; want master", role, err)
	}
}
