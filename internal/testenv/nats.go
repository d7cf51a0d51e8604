package testenv

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS starts an in-process NATS server with JetStream on a random loopback port, storing in
// tb.TempDir(), and shuts it down when the test ends. Use s.ClientURL() to connect.
func NATS(tb testing.TB) *server.Server {
	tb.Helper()
	return NATSAt(tb, -1, tb.TempDir())
}

// NATSAt starts an in-process NATS server with JetStream on port (-1 picks a free one) with
// its store in dir. A test that stops a server and starts it again reuses port and dir.
func NATSAt(tb testing.TB, port int, dir string) *server.Server {
	tb.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		tb.Fatalf("start nats: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		tb.Fatal("start nats: not ready after 10s")
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// JetStream connects to the NATS server at url and returns a JetStream context of the
// connection, which is closed when the test ends. It fails the test when either fails.
func JetStream(tb testing.TB, url string) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatalf("connect to nats: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return js
}
