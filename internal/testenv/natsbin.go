package testenv

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NATSBinary is a nats-server process a test spawned from the binary on PATH (Debian's
// package: an older server than the embedded one), for tests that must hold against the
// oldest nats-server the README supports.
type NATSBinary struct {
	// URL is the client URL (nats://127.0.0.1:<port>).
	URL string
	// Version is what `nats-server --version` printed, e.g. "v2.9.10".
	Version string

	tb   testing.TB
	bin  string
	args []string
	addr string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// StartNATSBinary spawns `nats-server -js -sd <tempdir>` on a free loopback port and kills it
// when the test ends. It skips the test, saying why, when no nats-server binary is installed
// (`apt-get install nats-server`), and fails it when the server does not accept connections
// within 10 seconds.
func StartNATSBinary(tb testing.TB) *NATSBinary {
	tb.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		tb.Skip("nats-server binary not installed (apt-get install nats-server); this test checks the consumer settings against it")
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		tb.Fatalf("nats-server --version: %v", err)
	}
	version := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "nats-server:"))
	port := freePort()
	n := &NATSBinary{tb: tb, bin: bin, Version: version, addr: "127.0.0.1:" + strconv.Itoa(port),
		args: []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", tb.TempDir()}}
	n.URL = "nats://" + n.addr
	tb.Cleanup(n.Kill)
	if err := n.start(); err != nil {
		tb.Fatal(err)
	}
	return n
}

// start spawns the server and waits up to 10 s for it to accept connections.
func (n *NATSBinary) start() error {
	cmd := exec.Command(n.bin, n.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout = n.tb.Output()
	cmd.Stderr = n.tb.Output()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nats-server: %w", err)
	}
	n.mu.Lock()
	n.cmd = cmd
	n.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", n.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats-server %s on %s not answering: %w", n.Version, n.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill sends the server SIGKILL (no shutdown, no flush: what a crash of the process does)
// and waits for it to exit; a server already killed is left alone.
func (n *NATSBinary) Kill() {
	n.mu.Lock()
	cmd := n.cmd
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// Restart starts a killed server again on the same port with the same store directory; it
// fails the test when the server does not come back within 10 seconds.
func (n *NATSBinary) Restart() {
	n.tb.Helper()
	n.Kill()
	if err := n.start(); err != nil {
		n.tb.Fatal(err)
	}
}
