package clustertest

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSCluster is a cluster of in-process NATS servers with JetStream, joined by routes on
// loopback.
type NATSCluster struct {
	mu      sync.Mutex
	opts    []*server.Options
	servers []*server.Server // nil while a server is stopped
}

// StartNATSCluster starts n in-process NATS servers with JetStream (stores under dir),
// routed to each other, and waits until JetStream has a meta leader and every server is
// routed to all the others.
//
// A server that cannot start (a port taken after FreePort checked it) makes it try again, on
// other ports, up to 3 times.
func StartNATSCluster(ctx context.Context, dir string, n int) (*NATSCluster, error) {
	var err error
	for try := range 3 {
		var c *NATSCluster
		c, err = startNATSCluster(filepath.Join(dir, "try"+strconv.Itoa(try)), n)
		if err == nil {
			if err := c.WaitHealthy(ctx, 60*time.Second); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

// startNATSCluster starts the servers of StartNATSCluster once, on ports free just before.
func startNATSCluster(dir string, n int) (*NATSCluster, error) {
	c := &NATSCluster{}
	routePorts := make([]int, n)
	for i := range routePorts {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		routePorts[i] = p
	}
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(p)})
	}
	for i := range n {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		c.opts = append(c.opts, &server.Options{
			ServerName: "n" + strconv.Itoa(i),
			Host:       "127.0.0.1",
			Port:       port,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, "n"+strconv.Itoa(i)),
			NoLog:      true,
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: "resumer-test", Host: "127.0.0.1", Port: routePorts[i],
			},
			Routes: routes,
		})
		c.servers = append(c.servers, nil)
	}
	for i := range n {
		if err := c.Start(i); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// URL is the comma-separated client URLs of every server (RESUMER_NATS_URL).
func (c *NATSCluster) URL() string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(o.Port)
	}
	return strings.Join(urls, ",")
}

// Start starts server i (again, with the same ports and store) and waits until it accepts
// connections.
func (c *NATSCluster) Start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.servers[i] != nil {
		return nil
	}
	o := *c.opts[i]
	s, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("start nats %s: %w", o.ServerName, err)
	}
	s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("start nats %s: not ready after 15s", o.ServerName)
	}
	c.servers[i] = s
	return nil
}

// Stop shuts server i down (its clients reconnect to the others).
func (c *NATSCluster) Stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Close stops every server.
func (c *NATSCluster) Close() {
	for i := range c.servers {
		c.Stop(i)
	}
}

// Server returns server i, nil while it is stopped.
func (c *NATSCluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// StreamLeader returns the index of the server leading stream's Raft group, or -1.
func (c *NATSCluster) StreamLeader(stream string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.servers {
		if s != nil && s.JetStreamIsStreamLeader(globalAccount, stream) {
			return i
		}
	}
	return -1
}

const globalAccount = "$G"

// WaitHealthy waits until every running server is routed to every other running one and
// JetStream answers through a client of the cluster.
func (c *NATSCluster) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	return wait(ctx, timeout, "nats cluster healthy", func(ctx context.Context) error {
		c.mu.Lock()
		running := 0
		for _, s := range c.servers {
			if s != nil {
				running++
			}
		}
		for _, s := range c.servers {
			if s != nil && s.NumRoutes() < running-1 {
				c.mu.Unlock()
				return fmt.Errorf("nats %s has %d routes, want %d", s.Name(), s.NumRoutes(), running-1)
			}
		}
		c.mu.Unlock()
		nc, err := nats.Connect(c.URL(), nats.Timeout(time.Second))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		_, err = js.AccountInfo(ctx)
		return err
	})
}
