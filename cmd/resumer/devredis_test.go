package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// deadRedisURL is a loopback URL on which nothing listens.
func deadRedisURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port)
}

// TestDevStartsPrivateRedis: with nothing answering at the default Redis URL, dev starts its
// own redis-server with its data under the dev data directory and stops it on the way out.
func TestDevStartsPrivateRedis(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	ctx := context.Background()
	cfg := &config{RedisURL: deadRedisURL(t), explicit: map[string]bool{}}
	dir := filepath.Join(t.TempDir(), "redis")
	stop, note, err := ensureDevRedis(ctx, cfg, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := pingRedis(ctx, cfg.RedisURL, cfg.RedisTLS); err != nil {
		t.Fatalf("the private redis-server does not answer at %s: %v", cfg.RedisURL, err)
	}
	if !strings.Contains(note, dir) {
		t.Errorf("note %q does not say where the data is", note)
	}
	stop()
	if err := pingRedis(ctx, cfg.RedisURL, cfg.RedisTLS); err == nil {
		t.Errorf("the private redis-server still answers after stop")
	}
	if _, err := os.Stat(filepath.Join(dir, "redis.log")); err != nil {
		t.Errorf("no log under the data dir: %v", err)
	}
}

// TestDevRedisErrors: an explicit URL that does not answer is an error naming the variable;
// without redis-server on PATH the error says how to get one.
func TestDevRedisErrors(t *testing.T) {
	ctx := context.Background()
	cfg := &config{RedisURL: deadRedisURL(t), explicit: map[string]bool{"RESUMER_REDIS_URL": true}}
	_, _, err := ensureDevRedis(ctx, cfg, t.TempDir(), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "RESUMER_REDIS_URL") {
		t.Errorf("explicit dead URL: got %v, want an error naming RESUMER_REDIS_URL", err)
	}
	t.Setenv("PATH", t.TempDir())
	cfg = &config{RedisURL: deadRedisURL(t), explicit: map[string]bool{}}
	_, _, err = ensureDevRedis(ctx, cfg, t.TempDir(), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "apt-get install redis-server") {
		t.Errorf("no redis-server: got %v, want install advice", err)
	}
}
