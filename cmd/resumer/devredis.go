package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/redisconn"
)

// errNoRedis is what `resumer dev` says when nothing answers at the Redis URL and it cannot
// start a private redis-server.
var errNoRedis = errors.New("no Redis answers and redis-server is not installed: " +
	"install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) " +
	"or point RESUMER_REDIS_URL at a running Redis")

// pingRedis reports whether the Redis deployment at rawURL (one node, Sentinel or Cluster),
// reached with the TLS files tlsFiles, answers within a second.
func pingRedis(ctx context.Context, rawURL string, tlsFiles redisconn.TLSFiles) error {
	opts, _, err := redisconn.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("RESUMER_REDIS_URL: %w", err)
	}
	if err := tlsFiles.Apply(opts); err != nil {
		return fmt.Errorf("RESUMER_REDIS_TLS_*_FILE: %w", err)
	}
	opts.DialTimeout = 500 * time.Millisecond
	opts.MaxRetries = -1
	c := redis.NewUniversalClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return redisconn.Ping(ctx, c)
}

// devRedis is a redis-server that `resumer dev` started for itself: loopback only, its data
// (an append-only file) under the dev data directory, stopped with dev.
type devRedis struct {
	url    string
	cmd    *exec.Cmd
	exited chan error // receives the process's exit once
}

// startDevRedis starts redis-server on a free loopback port with its data in dir and waits
// until it answers. It fails with errNoRedis when redis-server is not on PATH.
func startDevRedis(ctx context.Context, dir string, logw io.Writer) (*devRedis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start private redis-server: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start private redis-server: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--appendonly", "yes", "--save", "", "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"))
	cmd.Stdout, cmd.Stderr = logw, logw
	// Never outlive dev, even when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start private redis-server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	r := &devRedis{url: fmt.Sprintf("redis://127.0.0.1:%d/0", port), cmd: cmd, exited: exited}
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		if pingRedis(ctx, r.url, redisconn.TLSFiles{}) == nil {
			return r, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("private redis-server exited (log: %s): %v", filepath.Join(dir, "redis.log"), err)
		case <-deadline.C:
			cmd.Process.Kill()
			return nil, fmt.Errorf("private redis-server on port %d did not answer within 15s (log: %s)", port, filepath.Join(dir, "redis.log"))
		case <-ctx.Done():
			cmd.Process.Kill()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop asks the server to shut down (it writes its append-only file) and waits for it, killing
// it after 5 seconds.
func (r *devRedis) Stop() {
	opts, _ := redis.ParseURL(r.url)
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// SHUTDOWN closes the connection, so its "error" is the expected outcome.
	c.Shutdown(ctx)
	select {
	case <-r.exited:
	case <-ctx.Done():
		r.cmd.Process.Kill()
		<-r.exited
	}
}
