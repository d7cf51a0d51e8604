package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
)

// TestPingIsAWrite: Store.Ping succeeds on a writable Redis (leaving an expiring probe key
// per shard under the prefix), and fails, with IsUnavailable, on a Redis that answers PING but
// refuses writes: out of memory under noeviction, and a read-only replica.
func TestPingIsAWrite(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	s, err := New(rdb, Config{Prefix: "probe", Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping on a writable redis: %v", err)
	}
	for shard := range 4 {
		key := fmt.Sprintf("probe:{%d}:hp", shard)
		if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("probe key %s TTL %v, want up to a minute", key, ttl)
		}
	}

	rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction")
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING under OOM: %v", err)
	}
	err = s.Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "OOM") || !IsUnavailable(err) {
		t.Errorf("Ping under OOM = %v (unavailable %v), want an OOM error", err, IsUnavailable(err))
	}
	rdb.ConfigSet(ctx, "maxmemory", "0")

	other := testenv.StartRedis(t)
	host, port, _ := strings.Cut(other.Addr(), ":")
	if err := rdb.SlaveOf(ctx, host, port).Err(); err != nil {
		t.Fatal(err)
	}
	err = s.Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "READONLY") || !IsUnavailable(err) {
		t.Errorf("Ping on a replica = %v (unavailable %v), want a READONLY error", err, IsUnavailable(err))
	}
}

func TestIsUnavailable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("apply event: %w", ErrInvalidEvent), false},
		{fmt.Errorf("read: %w", ErrNotFound), false},
		{replyError("ERR Error running script (call to f_1): @user_script:3: user_script:3: attempt to index a nil value"), false},
		{replyError("OOM command not allowed when used memory > 'maxmemory'. script: ab, on @user_script:1."), true},
		{replyError("ERR Error running script (call to f_1): @user_script:1: @user_script: 1: -OOM command not allowed when used memory > 'maxmemory'."), true},
		{replyError("READONLY You can't write against a read only replica."), true},
		{replyError("LOADING Redis is loading the dataset in memory"), true},
		{replyError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true},
		{replyError("CLUSTERDOWN The cluster is down"), true},
		{replyError("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{fmt.Errorf("apply batch: %w", context.DeadlineExceeded), true},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), true},
		{fmt.Errorf("%w: %w", errScriptMissing, replyError("NOSCRIPT No matching script")), true},
	} {
		if got := IsUnavailable(c.err); got != c.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// replyError is a Redis error reply (a redis.Error), as go-redis returns them.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}
