package clustertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/redisconn"
)

// TestSlot checks Slot against Redis Cluster's documented values.
func TestSlot(t *testing.T) {
	for key, want := range map[string]int{"123456789": 12739, "somekey": 11058, "{user1000}.following": Slot("user1000")} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}

// TestRedisClusterFailover starts a cluster, writes through the cluster URL, kills the
// primary of a key and checks that its replica takes over with the write intact.
func TestRedisClusterFailover(t *testing.T) {
	t.Parallel()
	c := RedisClusterT(t)
	ctx := context.Background()
	rdb, mode, err := redisconn.New(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if mode != redisconn.Cluster {
		t.Fatalf("mode %s", mode)
	}
	if err := rdb.Set(ctx, "k{1}", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	p, err := c.PrimaryOf(ctx, "k{1}")
	if err != nil {
		t.Fatal(err)
	}
	// WAIT has no key: a cluster client would send it to any node. Ask the key's primary.
	primary, err := rdb.(*redis.ClusterClient).MasterForKey(ctx, "k{1}")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := primary.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n < 1 {
		t.Fatalf("WAIT on the key's primary: %d replicas acknowledged (%v), want 1", n, err)
	}
	time.Sleep(100 * time.Millisecond)
	p.Kill()
	if err := c.WaitHealthy(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	np, err := c.PrimaryOf(ctx, "k{1}")
	if err != nil || np == p {
		t.Fatalf("primary after failover: %v %v", np, err)
	}
	// The client learns the new topology from its first failures; the service retries.
	eventually(t, "the write read back through the new primary", func() error {
		got, err := rdb.Get(ctx, "k{1}").Result()
		if err == nil && got != "v" {
			err = fmt.Errorf("got %q", got)
		}
		return err
	})
	eventually(t, "ping of every primary", func() error { return redisconn.Ping(ctx, rdb) })
}

// TestSentinelFailover kills the primary of a Sentinel set and checks that the replica is
// promoted and a client of the sentinel URL follows it.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	s := SentinelT(t)
	ctx := context.Background()
	rdb, mode, err := redisconn.New(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if mode != redisconn.Sentinel {
		t.Fatalf("mode %s", mode)
	}
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Do(ctx, "WAIT", 1, 5000).Err(); err != nil {
		t.Fatal(err)
	}
	p, err := s.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	if err := s.WaitHealthy(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	np, err := s.Primary(ctx)
	if err != nil || np == p {
		t.Fatalf("primary after failover: %v %v", np, err)
	}
	eventually(t, "the write read back through the new primary", func() error {
		got, err := rdb.Get(ctx, "k").Result()
		if err == nil && got != "v" {
			err = fmt.Errorf("got %q", got)
		}
		return err
	})
}

// eventually retries f every 50 ms for up to 30 s and fails the test with its last error.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNATSCluster starts three routed servers.
func TestNATSCluster(t *testing.T) {
	t.Parallel()
	c := NATSClusterT(t)
	c.Stop(1)
	if err := c.WaitHealthy(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
}
