package testenv

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
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
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", tb.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout = tb.Output()
	cmd.Stderr = tb.Output()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start nats-server: %v", err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("nats-server %s on %s not answering: %v", version, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &NATSBinary{URL: fmt.Sprintf("nats://%s", addr), Version: version}
}
