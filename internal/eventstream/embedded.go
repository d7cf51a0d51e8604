package eventstream

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSDefaultSyncInterval is how often nats-server fsyncs its JetStream file store when its
// configuration does not say (sync_interval): a message is written to the file (the page
// cache) before its PubAck, but reaches the disk only at the next sync. With one replica, an
// operating-system crash or power loss can lose up to this much acknowledged data; a crash of
// the nats-server process alone loses nothing.
const NATSDefaultSyncInterval = 2 * time.Minute

// Sync is a nats-server's JetStream sync_interval: fsync on every write (Always), or every
// Interval.
type Sync struct {
	Always   bool
	Interval time.Duration
}

// SyncAlways fsyncs every write before the PubAck: nothing acknowledged is lost to an OS
// crash, at a throughput cost (docs/BENCHMARKS.md).
var SyncAlways = Sync{Always: true}

// ParseSync reads a sync_interval as nats-server's configuration writes it: "always", or a
// duration such as "1s" or "2m". It fails on anything else, and on a duration of zero or
// less.
func ParseSync(s string) (Sync, error) {
	if strings.EqualFold(strings.TrimSpace(s), "always") {
		return SyncAlways, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return Sync{}, fmt.Errorf("sync interval %q: want \"always\" or a positive duration such as 1s", s)
	}
	return Sync{Interval: d}, nil
}

// String returns the sync_interval as nats-server's configuration writes it.
func (s Sync) String() string {
	switch {
	case s.Always:
		return "always"
	case s.Interval <= 0:
		return NATSDefaultSyncInterval.String() + " (nats-server's default)"
	default:
		return s.Interval.String()
	}
}

// StartEmbedded runs an in-process NATS server with JetStream on a free loopback port,
// storing under dir (created when missing) and syncing its store as sync says (the zero Sync
// is nats-server's default, every two minutes), for `resumer dev` and the benchmark harness.
// It fails when dir cannot be created or the server is not ready within 10 seconds; the
// caller shuts the server down.
func StartEmbedded(name, dir string, sync Sync) (*server.Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create nats data dir: %w", err)
	}
	opts := &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
	}
	switch {
	case sync.Always:
		opts.SyncAlways = true
		opts.SyncInterval = NATSDefaultSyncInterval // as nats-server's own "always" sets it
	case sync.Interval > 0:
		opts.SyncInterval = sync.Interval
	}
	ns, err := server.NewServer(opts)
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
