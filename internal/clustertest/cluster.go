package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// RedisCluster is a Redis Cluster of loopback redis-server processes: Primaries primaries,
// each with one replica, all 16384 slots assigned.
type RedisCluster struct {
	Nodes []*RedisNode
}

// StartRedisCluster starts 2×primaries redis-server processes in cluster mode under dir (no
// persistence, cluster-node-timeout NodeTimeout), creates the cluster with one replica per
// primary (redis-cli --cluster create --cluster-replicas 1) and waits until every node
// reports cluster_state:ok and knows every replica. On error it kills what it started.
func StartRedisCluster(ctx context.Context, dir string, primaries int) (*RedisCluster, error) {
	if err := RequireBinaries(); err != nil {
		return nil, err
	}
	c := &RedisCluster{}
	for i := range 2 * primaries {
		// A cluster node also listens on port+10000, its cluster bus.
		n, err := startNode(dir, "node"+strconv.Itoa(i), []int{10000}, func(port int, d string) []string {
			return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", d,
				"--save", "", "--appendonly", "no", "--daemonize", "no",
				"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", strconv.Itoa(int(NodeTimeout.Milliseconds())),
				// a replica takes over however long it was cut off from its primary
				"--cluster-replica-validity-factor", "0"}
		})
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := c.WaitHealthy(ctx, 60*time.Second); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// URL is the cluster's RESUMER_REDIS_URL: the first node with the others as addr seeds.
func (c *RedisCluster) URL() string {
	var b strings.Builder
	b.WriteString("redis://" + c.Nodes[0].Addr())
	for i, n := range c.Nodes[1:] {
		if i == 0 {
			b.WriteString("?")
		} else {
			b.WriteString("&")
		}
		b.WriteString("addr=" + n.Addr())
	}
	return b.String()
}

// Close kills every node.
func (c *RedisCluster) Close() {
	for _, n := range c.Nodes {
		n.Kill()
	}
}

// node returns the node listening on addr, or nil.
func (c *RedisCluster) node(addr string) *RedisNode {
	for _, n := range c.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// ClusterNode is one line of CLUSTER NODES.
type ClusterNode struct {
	ID, Addr string
	Primary  bool
	Failed   bool // flagged fail or fail?
	Slots    int  // number of slots served (primaries)
}

// Topology returns CLUSTER NODES as seen by the first live node.
func (c *RedisCluster) Topology(ctx context.Context) ([]ClusterNode, error) {
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		cl := n.Client()
		out, err := cl.ClusterNodes(ctx).Result()
		cl.Close()
		if err != nil {
			continue
		}
		return parseClusterNodes(out), nil
	}
	return nil, fmt.Errorf("cluster nodes: no live node answers")
}

func parseClusterNodes(out string) []ClusterNode {
	var nodes []ClusterNode
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		cn := ClusterNode{ID: f[0], Addr: addr, Primary: strings.Contains(f[2], "master"),
			Failed: strings.Contains(f[2], "fail")}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated or imported
			}
			lo, hi, ok := strings.Cut(r, "-")
			a, _ := strconv.Atoi(lo)
			b := a
			if ok {
				b, _ = strconv.Atoi(hi)
			}
			cn.Slots += b - a + 1
		}
		nodes = append(nodes, cn)
	}
	return nodes
}

// PrimaryOf returns the live node that serves key's slot now.
func (c *RedisCluster) PrimaryOf(ctx context.Context, key string) (*RedisNode, error) {
	slot := Slot(key)
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		cl := n.Client()
		slots, err := cl.ClusterSlots(ctx).Result()
		cl.Close()
		if err != nil {
			continue
		}
		for _, s := range slots {
			if slot >= s.Start && slot <= s.End && len(s.Nodes) > 0 {
				if p := c.node(s.Nodes[0].Addr); p != nil {
					return p, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no live node knows the primary of slot %d", slot)
}

// Primaries returns the live nodes that are primaries serving slots.
func (c *RedisCluster) Primaries(ctx context.Context) ([]*RedisNode, error) {
	top, err := c.Topology(ctx)
	if err != nil {
		return nil, err
	}
	var out []*RedisNode
	for _, cn := range top {
		if n := c.node(cn.Addr); n != nil && cn.Primary && !cn.Failed && cn.Slots > 0 && n.Alive() {
			out = append(out, n)
		}
	}
	return out, nil
}

// WaitHealthy waits until every live node reports cluster_state:ok, every primary that
// serves slots is alive, and every live node agrees on it.
func (c *RedisCluster) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	return wait(ctx, timeout, "redis cluster healthy", func(ctx context.Context) error {
		for _, n := range c.Nodes {
			if !n.Alive() {
				continue
			}
			cl := n.Client()
			info, err := cl.ClusterInfo(ctx).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = fmt.Errorf("node %s: cluster_state not ok", n.Addr())
			}
			var out string
			if err == nil {
				out, err = cl.ClusterNodes(ctx).Result()
			}
			cl.Close()
			if err != nil {
				return err
			}
			slots := 0
			for _, cn := range parseClusterNodes(out) {
				if !cn.Primary || cn.Slots == 0 {
					continue
				}
				if p := c.node(cn.Addr); cn.Failed || p == nil || !p.Alive() {
					return fmt.Errorf("node %s still sees primary %s serving %d slots", n.Addr(), cn.Addr, cn.Slots)
				}
				slots += cn.Slots
			}
			if slots != 16384 {
				return fmt.Errorf("node %s sees %d of 16384 slots served", n.Addr(), slots)
			}
		}
		return replicasInSync(ctx, c.Nodes)
	})
}

// Reshard moves slots slots from primary from to primary to with redis-cli --cluster
// reshard, while clients keep working (they see ASK and MOVED redirections).
func (c *RedisCluster) Reshard(ctx context.Context, from, to *RedisNode, slots int) error {
	top, err := c.Topology(ctx)
	if err != nil {
		return err
	}
	id := func(n *RedisNode) string {
		for _, cn := range top {
			if cn.Addr == n.Addr() {
				return cn.ID
			}
		}
		return ""
	}
	// redis-cli refuses to reshard while the nodes have not all learnt the last change.
	if err := wait(ctx, time.Minute, "redis cluster configuration agreed", func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, "redis-cli", "--cluster", "check", to.Addr()).CombinedOutput()
		if err != nil {
			return fmt.Errorf("redis-cli --cluster check: %w\n%s", err, out)
		}
		return nil
	}); err != nil {
		return err
	}
	fromID, toID := id(from), id(to)
	if fromID == "" || toID == "" {
		return fmt.Errorf("reshard: %s or %s not in the cluster", from.Addr(), to.Addr())
	}
	cmd := exec.CommandContext(ctx, "redis-cli", "--cluster", "reshard", to.Addr(),
		"--cluster-from", fromID, "--cluster-to", toID, "--cluster-slots", strconv.Itoa(slots),
		"--cluster-yes", "--cluster-pipeline", "100")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("redis-cli --cluster reshard: %w\n%s", err, out.String())
	}
	return nil
}

// Slot is the Redis Cluster hash slot of key (CRC16 of its hash tag, mod 16384).
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % 16384)
}

// replicasInSync checks that every live node that is a replica has its link to its primary
// up (the initial sync done), so that writes acknowledged from now on reach it.
func replicasInSync(ctx context.Context, nodes []*RedisNode) error {
	for _, n := range nodes {
		if !n.Alive() {
			continue
		}
		cl := n.Client()
		info, err := cl.Info(ctx, "replication").Result()
		cl.Close()
		if err != nil {
			return err
		}
		if strings.Contains(info, "role:slave") && !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica %s: link to its primary not up", n.Addr())
		}
	}
	return nil
}
