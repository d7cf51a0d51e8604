package clustertest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MasterName is the name the Sentinels monitor the primary under.
const MasterName = "mymaster"

// SentinelSet is a Redis primary with one replica, watched by three Sentinels (quorum 2).
type SentinelSet struct {
	Data      []*RedisNode // the primary first, as started; Sentinel may promote another
	Sentinels []*RedisNode
	tls       bool // every node speaks only TLS (StartSentinelTLS)
}

// SentinelTLS is what StartSentinelTLS needs to start a Sentinel set that speaks only TLS.
type SentinelTLS struct {
	// CertFile and KeyFile are the certificate (for 127.0.0.1) and key every node serves,
	// and also presents when it dials another node; CAFile is the PEM bundle every node
	// verifies the others' certificates against (tls-ca-cert-file).
	CertFile, KeyFile, CAFile string
	// Client is how the harness dials the nodes: it trusts the CA. The nodes do not ask
	// clients for certificates (tls-auth-clients no).
	Client *tls.Config
}

// StartSentinel starts a primary, a replica and three Sentinels under dir (no persistence,
// down-after-milliseconds NodeTimeout) and waits until every Sentinel knows the replica and
// the other two Sentinels, so a failover can be elected. On error it kills what it started.
func StartSentinel(ctx context.Context, dir string) (*SentinelSet, error) {
	return startSentinel(ctx, dir, nil)
}

// StartSentinelTLS is StartSentinel with every node, primary, replica and Sentinels, speaking
// only TLS with t's files: no plain port (port 0), tls-port on the node's loopback port,
// replication and the Sentinels' connections to the data nodes and to each other over TLS
// (tls-replication yes). Its URL is a rediss+sentinel one. It fails as StartSentinel does,
// and when t misses a file or Client; a redis-server built without TLS exits at once on
// the tls options and the error carries its output.
func StartSentinelTLS(ctx context.Context, dir string, t SentinelTLS) (*SentinelSet, error) {
	if t.CertFile == "" || t.KeyFile == "" || t.CAFile == "" || t.Client == nil {
		return nil, errors.New("start sentinel over TLS: want CertFile, KeyFile, CAFile and Client")
	}
	return startSentinel(ctx, dir, &t)
}

// startSentinel starts the set, over TLS when t is not nil.
func startSentinel(ctx context.Context, dir string, t *SentinelTLS) (*SentinelSet, error) {
	if err := RequireBinaries(); err != nil {
		return nil, err
	}
	s := &SentinelSet{tls: t != nil}
	var client *tls.Config
	// listen is the node's listening and TLS settings as redis-server arguments.
	listen := func(port int) []string {
		if t == nil {
			return []string{"--port", strconv.Itoa(port)}
		}
		return []string{"--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", t.CertFile, "--tls-key-file", t.KeyFile, "--tls-ca-cert-file", t.CAFile,
			"--tls-auth-clients", "no", "--tls-replication", "yes"}
	}
	if t != nil {
		client = t.Client
	}
	dataArgs := func(extra ...string) func(int, string) []string {
		return func(port int, d string) []string {
			return append(append(listen(port), "--bind", "127.0.0.1", "--dir", d,
				"--save", "", "--appendonly", "no", "--daemonize", "no"), extra...)
		}
	}
	primary, err := StartNode(dir, "primary", nil, client, dataArgs())
	if err != nil {
		return nil, err
	}
	s.Data = append(s.Data, primary)
	replica, err := StartNode(dir, "replica", nil, client, dataArgs("--replicaof", "127.0.0.1", strconv.Itoa(primary.Port)))
	if err != nil {
		s.Close()
		return nil, err
	}
	s.Data = append(s.Data, replica)
	for i := range 3 {
		n, err := StartNode(dir, "sentinel"+strconv.Itoa(i), nil, client, func(port int, d string) []string {
			conf := filepath.Join(d, "sentinel.conf")
			body := fmt.Sprintf("bind 127.0.0.1\ndir %s\n"+
				"sentinel monitor %s 127.0.0.1 %d 2\n"+
				"sentinel down-after-milliseconds %s %d\n"+
				"sentinel failover-timeout %s 10000\n"+
				"sentinel parallel-syncs %s 1\n",
				d, MasterName, primary.Port, MasterName, NodeTimeout.Milliseconds(), MasterName, MasterName)
			// The listening and TLS settings go in the file too (Sentinel rewrites its file
			// and keeps what it read there); its lines are the arguments without "--".
			l := listen(port)
			for j := 0; j+1 < len(l); j += 2 {
				body += strings.TrimPrefix(l[j], "--") + " " + l[j+1] + "\n"
			}
			if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
				return nil
			}
			return []string{conf, "--sentinel"}
		})
		if err != nil {
			s.Close()
			return nil, err
		}
		s.Sentinels = append(s.Sentinels, n)
	}
	if err := s.WaitHealthy(ctx, 60*time.Second); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// URL is the set's RESUMER_REDIS_URL (redis+sentinel://s1,s2,s3/mymaster/0; rediss+sentinel
// for a set StartSentinelTLS started).
func (s *SentinelSet) URL() string {
	addrs := make([]string, len(s.Sentinels))
	for i, n := range s.Sentinels {
		addrs[i] = n.Addr()
	}
	scheme := "redis+sentinel://"
	if s.tls {
		scheme = "rediss+sentinel://"
	}
	return scheme + strings.Join(addrs, ",") + "/" + MasterName + "/0"
}

// Close kills every process.
func (s *SentinelSet) Close() {
	for _, n := range append(append([]*RedisNode{}, s.Sentinels...), s.Data...) {
		n.Kill()
	}
}

// Primary returns the data node the live Sentinels agree is the primary now.
func (s *SentinelSet) Primary(ctx context.Context) (*RedisNode, error) {
	var addr string
	for _, sn := range s.Sentinels {
		if !sn.Alive() {
			continue
		}
		c := sn.Client()
		got, err := c.Do(ctx, "SENTINEL", "get-master-addr-by-name", MasterName).StringSlice()
		c.Close()
		if err != nil || len(got) != 2 {
			return nil, fmt.Errorf("sentinel %s: get-master-addr-by-name: %v", sn.Addr(), err)
		}
		a := got[0] + ":" + got[1]
		if addr != "" && a != addr {
			return nil, fmt.Errorf("sentinels disagree on the primary: %s and %s", addr, a)
		}
		addr = a
	}
	for _, n := range s.Data {
		if n.Addr() == addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("sentinels name %q, not a node of this set", addr)
}

// WaitHealthy waits until the Sentinels agree on a live primary that answers as a master,
// and each Sentinel knows the other two (and, when a replica is alive, that replica).
func (s *SentinelSet) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	return wait(ctx, timeout, "redis sentinel healthy", func(ctx context.Context) error {
		p, err := s.Primary(ctx)
		if err != nil {
			return err
		}
		if !p.Alive() {
			return fmt.Errorf("primary %s is down", p.Addr())
		}
		pc := p.Client()
		role, err := pc.Do(ctx, "ROLE").Slice()
		pc.Close()
		if err != nil || len(role) == 0 || role[0] != "master" {
			return fmt.Errorf("primary %s: role %v %v", p.Addr(), role, err)
		}
		liveReplicas := 0
		for _, n := range s.Data {
			if n != p && n.Alive() {
				liveReplicas++
			}
		}
		for _, sn := range s.Sentinels {
			if !sn.Alive() {
				continue
			}
			c := sn.Client()
			others, err := c.Do(ctx, "SENTINEL", "sentinels", MasterName).Slice()
			var replicas []any
			if err == nil {
				replicas, err = c.Do(ctx, "SENTINEL", "replicas", MasterName).Slice()
			}
			c.Close()
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", sn.Addr(), err)
			}
			if len(others) < len(s.Sentinels)-1 {
				return fmt.Errorf("sentinel %s knows %d other sentinels", sn.Addr(), len(others))
			}
			if len(replicas) < liveReplicas {
				return fmt.Errorf("sentinel %s knows %d replicas", sn.Addr(), len(replicas))
			}
		}
		return replicasInSync(ctx, s.Data)
	})
}
