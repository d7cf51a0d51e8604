package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/clustertest"
)

var (
	redisOnce sync.Once
	redisURL  string
	redisErr  error
)

// RedisURL returns the URL of the Redis every test shares: RESUMER_TEST_REDIS_URL when set,
// else redis://127.0.0.1:6379/0 when something answers there, else a redis-server started
// for this test process (it dies with the process).
func RedisURL(tb testing.TB) string {
	tb.Helper()
	redisOnce.Do(func() {
		if u := os.Getenv("RESUMER_TEST_REDIS_URL"); u != "" {
			redisURL = u
			return
		}
		if ping("redis://127.0.0.1:6379/0") == nil {
			redisURL = "redis://127.0.0.1:6379/0"
			return
		}
		var srv *RedisServer
		srv, redisErr = startRedisServer("", false, nil)
		if redisErr == nil {
			redisURL = srv.URL()
		}
	})
	if redisErr != nil {
		tb.Fatalf("redis for tests: %v", redisErr)
	}
	return redisURL
}

// Redis returns a client of the shared test Redis and a key prefix unique to this test. Keys
// under the prefix are deleted and the client closed when the test ends.
func Redis(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	opts, err := redis.ParseURL(RedisURL(tb))
	if err != nil {
		tb.Fatalf("parse redis url: %v", err)
	}
	c := redis.NewClient(opts)
	prefix := Prefix(tb)
	tb.Cleanup(func() {
		DeletePrefix(context.Background(), c, prefix)
		c.Close()
	})
	return c, prefix
}

// Prefix returns a fresh key prefix ("t-<random>") for a test's keys, stream and consumer names.
func Prefix(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("random prefix: %v", err)
	}
	return "t-" + hex.EncodeToString(b[:])
}

// DeletePrefix deletes every key that starts with prefix; on a Redis Cluster client, on every
// primary. Keys are unlinked one per command (pipelined), so no command spans two slots.
func DeletePrefix(ctx context.Context, c redis.UniversalClient, prefix string) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			DeletePrefix(ctx, node, prefix)
			return nil
		})
		return
	}
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	flush := func() {
		pipe := c.Pipeline()
		for _, k := range batch {
			pipe.Unlink(ctx, k)
		}
		pipe.Exec(ctx)
		batch = batch[:0]
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
}

// RedisServer is a redis-server process a test owns, for tests that stop Redis on purpose.
type RedisServer struct {
	node *clustertest.RedisNode
	tls  bool // speaks only TLS (StartRedisTLS)
}

// RedisTLS is what StartRedisTLS needs to start a redis-server that speaks only TLS.
type RedisTLS struct {
	// CertFile and KeyFile are the server's certificate and key (PEM); CAFile is the PEM
	// bundle the server checks client certificates against (tls-ca-cert-file, which
	// redis-server requires even when it asks for none).
	CertFile, KeyFile, CAFile string
	// AuthClients is redis-server's tls-auth-clients: "no", "optional" or "yes" (empty: no).
	AuthClients string
	// Client is how the helper connects to check that the server is up: it trusts the
	// server's CA and, when AuthClients is yes, carries a client certificate.
	Client *tls.Config
}

// StartRedis starts a private redis-server on a free loopback port (no persistence) and stops
// it when the test ends. It skips the test when redis-server is not installed.
func StartRedis(tb testing.TB) *RedisServer {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Skip("redis-server not installed")
	}
	s, err := startRedisServer(tb.TempDir(), false, nil)
	if err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// StartRedisTLS starts a private redis-server that accepts only TLS connections (port 0, its
// tls-port a free loopback port), configured by t, and stops it when the test ends. Its URL
// is a rediss:// one. It skips the test when redis-server is not installed and fails it when
// the server does not start or does not answer t.Client over TLS (a redis-server built
// without TLS exits at once on the tls options).
func StartRedisTLS(tb testing.TB, t RedisTLS) *RedisServer {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Skip("redis-server not installed")
	}
	if t.CertFile == "" || t.KeyFile == "" || t.CAFile == "" || t.Client == nil {
		tb.Fatal("StartRedisTLS: want CertFile, KeyFile, CAFile and Client")
	}
	if t.AuthClients == "" {
		t.AuthClients = "no"
	}
	s, err := startRedisServer(tb.TempDir(), false, &t)
	if err != nil {
		tb.Fatalf("start redis-server with TLS: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// StartRedisAOF is StartRedis with an append-only file synced on every write: a server
// killed with SIGKILL (Stop) and started again (Restart) has every acknowledged write, as a
// production Redis with appendfsync always would.
func StartRedisAOF(tb testing.TB) *RedisServer {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Skip("redis-server not installed")
	}
	s, err := startRedisServer(tb.TempDir(), true, nil)
	if err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// URL is the server's redis:// URL, or rediss:// for a server StartRedisTLS started.
func (s *RedisServer) URL() string {
	if s.tls {
		return "rediss://" + s.Addr() + "/0"
	}
	return "redis://" + s.Addr() + "/0"
}

// Addr is the server's host:port.
func (s *RedisServer) Addr() string { return s.node.Addr() }

// Stop kills the server; calling it on a stopped server does nothing.
func (s *RedisServer) Stop() { s.node.Kill() }

// Restart starts a stopped server again on the same port.
func (s *RedisServer) Restart(tb testing.TB) {
	tb.Helper()
	if err := s.node.Start(); err != nil {
		tb.Fatalf("restart redis-server: %v", err)
	}
}

// startRedisServer starts a redis-server under dir (a new temporary directory when empty) on
// a free loopback port (clustertest.StartNode: on another one when the process exits at once,
// its port taken after the check).
func startRedisServer(dir string, aof bool, t *RedisTLS) (*RedisServer, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "resumer-redis-"); err != nil {
			return nil, err
		}
	}
	var client *tls.Config
	if t != nil {
		client = t.Client
	}
	n, err := clustertest.StartNode(dir, "redis", nil, client, func(port int, d string) []string {
		args := []string{"--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", d, "--daemonize", "no"}
		if t == nil {
			args = append(args, "--port", strconv.Itoa(port))
		} else {
			// TLS only, on port as its tls-port.
			args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port),
				"--tls-cert-file", t.CertFile, "--tls-key-file", t.KeyFile,
				"--tls-ca-cert-file", t.CAFile, "--tls-auth-clients", t.AuthClients)
		}
		if aof {
			args = append(args, "--appendonly", "yes", "--appendfsync", "always")
		}
		return args
	})
	if err != nil {
		return nil, err
	}
	return &RedisServer{node: n, tls: t != nil}, nil
}

// ping checks that the server at url answers (an answer asking for a password counts).
func ping(url string) error {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	opts.DialTimeout = 300 * time.Millisecond
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = c.Ping(ctx).Err()
	if err != nil && strings.Contains(err.Error(), "NOAUTH") {
		return nil
	}
	return err
}

// freePort returns a loopback port free now, outside the ephemeral range (see
// clustertest.FreePort); 16379 when none was found (the start then fails and says so).
func freePort() int {
	port, err := clustertest.FreePort()
	if err != nil {
		return 16379
	}
	return port
}
