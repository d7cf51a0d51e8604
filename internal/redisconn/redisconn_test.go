package redisconn

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		mode      Mode
		check     func(t *testing.T, o *redis.UniversalOptions)
	}{
		{name: "single", url: "redis://u:p@127.0.0.1:6380/3?dial_timeout=2s&pool_size=7", mode: Single,
			check: func(t *testing.T, o *redis.UniversalOptions) {
				want(t, "addrs", o.Addrs, []string{"127.0.0.1:6380"})
				want(t, "user", o.Username, "u")
				want(t, "password", o.Password, "p")
				want(t, "db", o.DB, 3)
				want(t, "dial timeout", o.DialTimeout, 2*time.Second)
				want(t, "pool size", o.PoolSize, 7)
				want(t, "tls", o.TLSConfig == nil, true)
			}},
		{name: "single tls", url: "rediss://:secret@redis.example:6380", mode: Single,
			check: func(t *testing.T, o *redis.UniversalOptions) {
				want(t, "password", o.Password, "secret")
				want(t, "server name", o.TLSConfig.ServerName, "redis.example")
			}},
		{name: "unix", url: "unix:///run/redis.sock?db=2", mode: Single,
			check: func(t *testing.T, o *redis.UniversalOptions) {
				want(t, "addrs", o.Addrs, []string{"/run/redis.sock"})
				want(t, "db", o.DB, 2)
				want(t, "dialer", o.Dialer != nil, true)
			}},
		{name: "cluster by addr", url: "redis://:pw@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000&read_timeout=1s", mode: Cluster,
			check: func(t *testing.T, o *redis.UniversalOptions) {
				want(t, "addrs", o.Addrs, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"})
				want(t, "password", o.Password, "pw")
				want(t, "read timeout", o.ReadTimeout, time.Second)
				want(t, "cluster mode", o.IsClusterMode, true)
			}},
		{name: "cluster one seed", url: "redis+cluster://10.0.0.1:7000/0", mode: Cluster,
			check: func(t *testing.T, o *redis.UniversalOptions) {
				want(t, "addrs", o.Addrs, []string{"10.0.0.1:7000"})
				want(t, "cluster mode", o.IsClusterMode, true)
			}},
		{name: "cluster tls", url: "rediss+cluster://u:pw@node1.example:7000?addr=node2.example:7000", mode: Cluster,
			check: func(t *testing.T, o *redis.UniversalOptions) {
				want(t, "tls", o.TLSConfig != nil, true)
				want(t, "server name (per node)", o.TLSConfig.ServerName, "")
				want(t, "user", o.Username, "u")
			}},
		{name: "sentinel", url: "redis+sentinel://app:data-pw@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3/mymaster/2?sentinel_password=s-pw&dial_timeout=3s", mode: Sentinel,
			check: func(t *testing.T, o *redis.UniversalOptions) {
				want(t, "sentinels", o.Addrs, []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"})
				want(t, "master", o.MasterName, "mymaster")
				want(t, "user", o.Username, "app")
				want(t, "password", o.Password, "data-pw")
				want(t, "sentinel password", o.SentinelPassword, "s-pw")
				want(t, "sentinel user", o.SentinelUsername, "")
				want(t, "db", o.DB, 2)
				want(t, "dial timeout", o.DialTimeout, 3*time.Second)
				want(t, "tls", o.TLSConfig == nil, true)
			}},
		{name: "sentinel tls, sentinel user", url: "rediss+sentinel://s1.example:26379/prod?sentinel_username=watcher&sentinel_password=x", mode: Sentinel,
			check: func(t *testing.T, o *redis.UniversalOptions) {
				want(t, "master", o.MasterName, "prod")
				want(t, "sentinel user", o.SentinelUsername, "watcher")
				want(t, "password", o.Password, "")
				want(t, "tls", o.TLSConfig != nil, true)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, mode, err := Parse(tc.url)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if mode != tc.mode {
				t.Fatalf("mode = %s, want %s", mode, tc.mode)
			}
			tc.check(t, o)
		})
	}
}

func want[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflectEqual(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func reflectEqual(a, b any) bool {
	if as, ok := a.([]string); ok {
		return slices.Equal(as, b.([]string))
	}
	return a == b
}

// TestParseRejects checks that a bad URL is an error that does not repeat the password.
func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"http://x", "unknown scheme"},
		{"127.0.0.1:6379", "want a URL"},
		{"redis://:hunter2@127.0.0.1:6379?bogus=1", "unexpected option"},
		{"redis://:hunter2@127.0.0.1:6379?addr=nohostport", "addr"},
		{"redis+cluster://:hunter2@127.0.0.1:7000/3", "only database 0"},
		{"redis+sentinel://:hunter2@127.0.0.1:26379", "primary's name"},
		{"redis+sentinel://:hunter2@127.0.0.1:26379/m/1/2", "primary's name"},
		{"redis+sentinel://:hunter2@127.0.0.1:26379/m?password=x", "user info"},
		{"redis+sentinel://:hunter2@127.0.0.1:26379/m/notadb", "database"},
		{"redis+sentinel://:hunter2@/m", "no sentinel"},
		{"redis://:hunter2@127.0.0.1:6379/%zz", "malformed"},
	} {
		_, _, err := Parse(tc.url)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want it to mention %q", tc.url, err, tc.want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q) error reveals the password: %v", tc.url, err)
		}
	}
}

// TestNewSingle talks to the shared test Redis through the constructor.
func TestNewSingle(t *testing.T) {
	c, mode, err := New(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if mode != Single {
		t.Errorf("mode = %s", mode)
	}
	if err := Ping(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// TestPingFailsWhenDown checks that Ping reports a stopped server.
func TestPingFailsWhenDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	c, _, err := New(srv.URL() + "?dial_timeout=200ms&max_retries=-1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := Ping(ctx, c); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := Ping(ctx, c); err == nil {
		t.Fatal("Ping succeeded with the server stopped")
	}
}
