package clustertest

import (
	"context"
	"errors"
	"testing"
	"time"
)

// startTimeout bounds how long a test waits for a cluster to form.
const startTimeout = 2 * time.Minute

// RedisClusterT starts a Redis Cluster of 3 primaries and 3 replicas for the test and kills
// it when the test ends. It skips the test, saying why, when the Redis binaries are missing,
// and fails it when the cluster does not form.
func RedisClusterT(tb testing.TB) *RedisCluster {
	tb.Helper()
	skipWithoutBinaries(tb)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := StartRedisCluster(ctx, tb.TempDir(), 3)
	if err != nil {
		tb.Fatalf("start redis cluster: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// SentinelT starts a primary, a replica and three Sentinels for the test and kills them
// when the test ends. It skips the test when the Redis binaries are missing.
func SentinelT(tb testing.TB) *SentinelSet {
	tb.Helper()
	skipWithoutBinaries(tb)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	s, err := StartSentinel(ctx, tb.TempDir())
	if err != nil {
		tb.Fatalf("start redis sentinel: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// SentinelTLST is SentinelT for a set that speaks only TLS with t's files (see
// StartSentinelTLS). It skips the test when the Redis binaries are missing and fails it when
// the set does not start, a redis-server built without TLS included.
func SentinelTLST(tb testing.TB, t SentinelTLS) *SentinelSet {
	tb.Helper()
	skipWithoutBinaries(tb)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	s, err := StartSentinelTLS(ctx, tb.TempDir(), t)
	if err != nil {
		tb.Fatalf("start redis sentinel over TLS: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// NATSClusterT starts a 3-node in-process NATS cluster with JetStream for the test and stops
// it when the test ends.
func NATSClusterT(tb testing.TB) *NATSCluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := StartNATSCluster(ctx, tb.TempDir(), 3)
	if err != nil {
		tb.Fatalf("start nats cluster: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

func skipWithoutBinaries(tb testing.TB) {
	tb.Helper()
	if err := RequireBinaries(); err != nil {
		if errors.Is(err, ErrMissingBinary) {
			tb.Skipf("skipping the cluster test: %v", err)
		}
		tb.Fatal(err)
	}
}
