// Package clustertest starts real clusters on loopback for tests and benchmarks: a Redis
// Cluster (redis-server in cluster mode, created with redis-cli --cluster create), a Redis
// primary and replica watched by three Sentinels, and a NATS cluster of in-process servers
// joined by routes, with JetStream. Nodes can be killed (SIGKILL) and restarted, slots
// resharded, so that tests can fail over under load. Tests call the *T helpers, which skip
// when the Redis binaries are missing; the benchmark harness calls the Start functions.
package clustertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// NodeTimeout is the cluster-node-timeout and Sentinel down-after-milliseconds of the
// clusters started here: low, so that a killed primary is replaced within seconds.
const NodeTimeout = 1000 * time.Millisecond

// ErrMissingBinary is wrapped by the Start functions when redis-server or redis-cli is not
// installed.
var ErrMissingBinary = errors.New("redis binaries not installed (apt-get install redis-server redis-sentinel redis-tools)")

// RequireBinaries returns an error wrapping ErrMissingBinary when one of the binaries the
// Redis clusters need (redis-server, redis-cli) is not on PATH.
func RequireBinaries() error {
	for _, b := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s: %w", b, ErrMissingBinary)
		}
	}
	return nil
}

// RedisNode is one redis-server (or Sentinel) process on a loopback port.
type RedisNode struct {
	Port int
	dir  string
	argv []string    // after the binary
	tls  *tls.Config // nil: plain TCP; else the node speaks only TLS and this is how to dial it

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited (and been waited for)
}

// Addr is the node's host:port.
func (n *RedisNode) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.Port) }

// Client returns a client of this node alone (no cluster redirection), which the caller
// closes. For a node started with TLS it dials TLS with the configuration it was started with.
func (n *RedisNode) Client() *redis.Client {
	opts := &redis.Options{Addr: n.Addr(), DialTimeout: time.Second, MaxRetries: -1}
	if n.tls != nil {
		opts.TLSConfig = n.tls.Clone()
	}
	return redis.NewClient(opts)
}

// Alive reports whether the node's process is running (it was not killed).
func (n *RedisNode) Alive() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Kill sends SIGKILL to the node, as a crash would, and waits for it to die. Killing a dead
// node does nothing.
func (n *RedisNode) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill()
	<-n.exited
	n.cmd = nil
}

// Start starts the node's process (again) and waits until it answers PING. Starting a
// running node does nothing.
func (n *RedisNode) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return nil
	}
	bin := "redis-server"
	cmd := exec.Command(bin, n.argv...)
	cmd.Dir = n.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis on %d: %w", n.Port, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c := n.Client()
	defer c.Close()
	pid := "process_id:" + strconv.Itoa(cmd.Process.Pid) + "\r\n"
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("redis on %d: %w: %s\n%s", n.Port, errExited, cmd.ProcessState, out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		// The process_id check: a server that answers on the port but is not ours (ours
		// could not bind) is waited out until ours exits.
		if err == nil && strings.Contains(info, pid) {
			n.cmd, n.exited = cmd, exited
			return nil
		}
		if err == nil {
			err = fmt.Errorf("another process answers on port %d", n.Port)
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis on %d not answering: %w\n%s", n.Port, err, out.String())
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// newNode prepares (does not start) a node on a free port with its own directory under dir;
// with tlsCfg not nil, a node that speaks only TLS, dialled with tlsCfg.
func newNode(dir, name string, offsets []int, tlsCfg *tls.Config, argv func(port int, dir string) []string) (*RedisNode, error) {
	port, err := FreePort(offsets...)
	if err != nil {
		return nil, err
	}
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, err
	}
	return &RedisNode{Port: port, dir: d, argv: argv(port, d), tls: tlsCfg}, nil
}

// Ports are picked at random in [portLow, portHigh): below the kernel's ephemeral range
// (32768 up on Linux by default), so that no outgoing connection of another process takes the
// port between the check and the server's bind, and low enough that port+10000 (a Redis
// Cluster node's bus port) is below that range too.
const portLow, portHigh = 12000, 22000

// FreePort returns a TCP port on 127.0.0.1 that is free now, as is port+off for each of
// offsets (10000 for a Redis Cluster node's bus port). It fails when 200 random tries found
// none. Another test may still take the port before the caller binds it: callers start
// servers through a retry on a bind failure (see startNode).
func FreePort(offsets ...int) (int, error) {
	var err error
	for range 200 {
		port := portLow + rand.IntN(portHigh-portLow)
		if err = portsFree(port, offsets); err == nil {
			return port, nil
		}
	}
	return 0, fmt.Errorf("find a free port: %w", err)
}

// portsFree reports (nil) whether port and port+off for each of offsets can be listened on.
func portsFree(port int, offsets []int) error {
	for _, off := range append([]int{0}, offsets...) {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+off))
		if err != nil {
			return err
		}
		l.Close()
	}
	return nil
}

// errExited is returned by RedisNode.Start when the process exited before answering, most
// often because its port was taken after FreePort checked it ("Address already in use").
var errExited = errors.New("redis-server exited")

// startNode prepares and starts a node (newNode, then Start), on another free port when the
// process exited at once (its port or bus port taken meanwhile), up to 5 tries.
func startNode(dir, name string, offsets []int, argv func(port int, dir string) []string) (*RedisNode, error) {
	return StartNode(dir, name, offsets, nil, argv)
}

// StartNode starts a redis-server of argv's arguments (for its port and directory dir/name)
// on a free loopback port, and port+off free too for each of offsets, waiting until it
// answers (checked by its process id, so not another server that took the port); on another
// port when the process exited at once (its port taken meanwhile), up to 5 tries. With tlsCfg
// not nil the node speaks only TLS (argv sets its tls-port and files) and is checked and
// dialled with tlsCfg. The caller kills the node.
func StartNode(dir, name string, offsets []int, tlsCfg *tls.Config, argv func(port int, dir string) []string) (*RedisNode, error) {
	var err error
	for range 5 {
		var n *RedisNode
		if n, err = newNode(dir, name, offsets, tlsCfg, argv); err != nil {
			return nil, err
		}
		if n.argv == nil {
			return nil, fmt.Errorf("prepare node %s under %s (config not written)", name, dir)
		}
		if err = n.Start(); err == nil {
			return n, nil
		}
		if !errors.Is(err, errExited) {
			return nil, err
		}
	}
	return nil, err
}

// wait polls cond every 50 ms until it returns nil or the timeout passes, returning its last
// error then.
func wait(ctx context.Context, timeout time.Duration, what string, cond func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := cond(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s: %w", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartRedisNode starts one standalone redis-server under dir on a free loopback port (no
// persistence): the single-node baseline of a comparison with the clusters started here.
func StartRedisNode(dir string) (*RedisNode, error) {
	if err := RequireBinaries(); err != nil {
		return nil, err
	}
	return startNode(dir, "single", nil, func(port int, d string) []string {
		return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", d,
			"--save", "", "--appendonly", "no", "--daemonize", "no"}
	})
}
