package eventstream

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartEmbedded runs an in-process NATS server with JetStream on a free loopback port,
// storing under dir (created when missing), for `resumer dev` and the benchmark harness.
// It fails when dir cannot be created or the server is not ready within 10 seconds; the
// caller shuts the server down.
func StartEmbedded(name, dir string) (*server.Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create nats data dir: %w", err)
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("start embedded nats: not ready after 10s")
	}
	return ns, nil
}
