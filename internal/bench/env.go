package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/eventstream"
)

// Machine describes where the run happened.
type Machine struct {
	GoVersion    string `json:"go_version"`
	GOOS         string `json:"goos"`
	GOARCH       string `json:"goarch"`
	CPUs         int    `json:"cpus"`
	GOMAXPROCS   int    `json:"gomaxprocs"`
	Memory       string `json:"memory"`
	RedisVersion string `json:"redis_version"`
	NATS         string `json:"nats"`
	// NATSSync is the embedded NATS server's sync_interval.
	NATSSync string `json:"nats_sync,omitempty"`
}

// env is what every scenario of one run shares: the run id, a Redis client, a NATS
// connection with its JetStream context and a progress log.
type env struct {
	run     string // lower-case hex, unique per run
	seed    uint64 // seeds the ids of generated inquiries and events
	rdb     redis.UniversalClient
	nc      *nats.Conn
	js      jetstream.JetStream
	natsURL string
	// natsSync is the embedded NATS server's sync_interval.
	natsSync eventstream.Sync
	// replicas is the replica count of the run's streams (Options.NATSReplicas; 1 on one
	// server).
	replicas int
	// loadgen is the argv of a load generator process (Options.Loadgen); nil: in-process.
	loadgen []string
	// corpusPath is the ingest corpus written for the load generator process, and
	// receiverURL the receiver of the phase running.
	corpusPath, receiverURL string
	log                     func(format string, args ...any)
	// secret signs the generated webhooks.
	secret []byte
}

// redisPrefix is the key prefix of one part of one scenario of this run; every key the run
// creates starts with "bench-<run>".
func (e *env) redisPrefix(part string) string { return "bench-" + e.run + "-" + part }

// streamName is the name of one stream of this run.
func (e *env) streamName(part string) string {
	return "BENCH_" + strings.ToUpper(e.run) + "_" + strings.ToUpper(part)
}

// newRunID returns 8 random hex digits and a seed derived from them.
func newRunID() (string, uint64) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:4]), binary.LittleEndian.Uint64(b[:])
}

// connectNATS opens a connection for one role of a scenario (the receiver, the worker, the
// load generator), as the service opens one per process.
func connectNATS(url, name string, opts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream on %s: %w", url, err)
	}
	return nc, js, nil
}

// ensureStream creates a fresh events stream of this run. Its subjects are the events
// subjects (persona.events.>), which only one stream of a NATS account may claim, so the
// stream must be deleted (deleteStream) before the next one is created.
//
// JetStream answers a creation right after the previous stream's deletion now and then with
// a server error (500, "error creating store for stream") while it is still letting go of
// that stream's store; like serve's start-up, the harness retries those a few times.
func (e *env) ensureStream(ctx context.Context, name string) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		_, err = eventstream.Ensure(ctx, e.js, eventstream.Config{Name: name, DedupWindow: 10 * time.Minute, Replicas: e.replicas})
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.Code != 500 {
			break
		}
	}
	if err != nil {
		if strings.Contains(err.Error(), "subjects overlap") {
			return fmt.Errorf("%w (another stream of this NATS account claims %s>; run against the embedded NATS, or a server without resumer's stream)",
				err, eventstream.SubjectPrefix)
		}
		return err
	}
	return nil
}

// deleteStream deletes a stream of this run; a missing stream is no error.
func (e *env) deleteStream(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		e.log("delete stream %s: %v", name, err)
	}
}

// forEachNode calls fn with every primary of a cluster client (each holds part of the keys),
// or with c itself for a single node or Sentinel. It stops at the first error.
func forEachNode(ctx context.Context, c redis.UniversalClient, fn func(ctx context.Context, node redis.UniversalClient) error) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return fn(ctx, node) })
	}
	return fn(ctx, c)
}

// deletePrefix deletes every key that starts with prefix (SCAN and pipelined single-key
// UNLINKs, so that no command spans two cluster slots), on every primary of a cluster, and
// returns how many it deleted.
func deletePrefix(ctx context.Context, c redis.UniversalClient, prefix string) (int, error) {
	var total atomic.Int64
	err := forEachNode(ctx, c, func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, prefix+"*", 5000).Iterator()
		batch := make([]string, 0, 1000)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			pipe := node.Pipeline()
			for _, k := range batch {
				pipe.Unlink(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
			total.Add(int64(len(batch)))
			batch = batch[:0]
			return nil
		}
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	})
	if err != nil {
		return int(total.Load()), fmt.Errorf("delete keys %s*: %w", prefix, err)
	}
	return int(total.Load()), nil
}

// cleanPrefix deletes a scenario's keys, logging a failure instead of returning it.
func (e *env) cleanPrefix(prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := deletePrefix(ctx, e.rdb, prefix); err != nil {
		e.log("clean up: %v", err)
	}
}

// machine describes this machine and the servers the run talks to.
func (e *env) machine(ctx context.Context, embedded bool) Machine {
	m := Machine{
		GoVersion:  runtime.Version(),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Memory:     memTotal(),
		NATS:       "given " + e.natsURL,
	}
	if embedded {
		m.NATS = "embedded " + server.VERSION
		m.NATSSync = e.natsSync.String()
		if e.replicas > 1 {
			m.NATS = fmt.Sprintf("embedded cluster of %d × %s, streams R%d", e.replicas, server.VERSION, e.replicas)
		}
	}
	if info, err := e.rdb.InfoMap(ctx, "server").Result(); err == nil {
		m.RedisVersion = info["Server"]["redis_version"]
	}
	return m
}

// memTotal reads MemTotal from /proc/meminfo, e.g. "23.4 GiB"; "?" elsewhere.
func memTotal() string {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseFloat(fields[1], 64)
			if err != nil {
				return "?"
			}
			return strconv.FormatFloat(kb/(1<<20), 'f', 1, 64) + " GiB"
		}
	}
	return "?"
}

// tempDir makes the embedded NATS store directory of a run.
func tempDir(run string) (string, error) {
	return os.MkdirTemp("", "resumer-bench-"+run+"-")
}

// removeAll removes a run's temporary directory, logging a failure.
func removeAll(dir string, log func(string, ...any)) {
	if err := os.RemoveAll(dir); err != nil {
		log("remove %s: %v", filepath.Base(dir), err)
	}
}

// logger returns a progress log writing timestamped lines to w (nothing when w is nil).
func logger(w io.Writer, start time.Time) func(string, ...any) {
	if w == nil {
		return func(string, ...any) {}
	}
	return func(format string, args ...any) {
		fmt.Fprintf(w, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
}
