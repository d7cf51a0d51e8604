package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// scriptCall is one invocation of a Lua script: its keys (all of one hash slot) and arguments.
type scriptCall struct {
	keys []string
	args []any
}

// runScript runs calls of script in one pipelined round trip, one EVALSHA each. Calls that
// find the script missing from the server's cache (NOSCRIPT: a restart, a failover, SCRIPT
// FLUSH) are run once more after SCRIPT LOAD, so they may run after later calls of the same
// batch; the apply script's order independence makes that harmless. A call that finds the
// script missing again right after the load (the pool reaches more than one server, as after
// a failover) is sent once more with the script's source (EVAL). It returns one command per call, whose error,
// if any, is that call's own (a Redis error reply such as a script error). The returned error
// is non-nil when the batch as a whole failed: Redis unreachable, the context done, or a
// server-wide condition (see batchFailure); no call's outcome is known then.
//
// For a store with Config.ReplicaAcks, every script but the read-only one is followed by a
// wait for that many replicas to acknowledge the writes (see awaitReplicas): a failover that
// promotes a replica then cannot lose a write the caller was told about.
func (s *Store) runScript(ctx context.Context, script *redis.Script, calls []scriptCall) ([]*redis.Cmd, error) {
	durable := s.cfg.ReplicaAcks > 0 && script != s.read
	_, cluster := s.client.(*redis.ClusterClient)
	out := make([]*redis.Cmd, len(calls))
	todo := make([]int, len(calls))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 0; ; attempt++ {
		pipe := s.client.Pipeline()
		cmds := make([]*redis.Cmd, len(todo))
		for j, i := range todo {
			if attempt < 2 {
				cmds[j] = script.EvalSha(ctx, pipe, calls[i].keys, calls[i].args...)
			} else {
				cmds[j] = script.Eval(ctx, pipe, calls[i].keys, calls[i].args...)
			}
		}
		if durable && !cluster {
			// WAIT counts the writes of its own connection, and a pipeline of a single-node
			// (or Sentinel) client is one connection.
			pipe.Do(ctx, "WAIT", s.cfg.ReplicaAcks, s.cfg.ReplicaTimeout.Milliseconds())
		}
		_, execErr := pipe.Exec(ctx)
		if err := batchFailure(execErr, cmds); err != nil {
			return nil, err
		}
		if durable && cluster {
			if err := s.awaitReplicas(ctx, calls, todo); err != nil {
				return nil, err
			}
		}
		var missing []int
		for j, i := range todo {
			if isNoScript(cmds[j].Err()) {
				if attempt == 2 {
					return nil, fmt.Errorf("%w: %w", errScriptMissing, cmds[j].Err())
				}
				missing = append(missing, i)
				continue
			}
			out[i] = cmds[j]
		}
		if len(missing) == 0 {
			return out, nil
		}
		if attempt == 0 {
			if err := script.Load(ctx, s.client).Err(); err != nil {
				return nil, fmt.Errorf("load script: %w", err)
			}
		}
		// Missing again right after loading: the pool's connections reach more than one
		// server (a failover behind a DNS name leaves connections to the old primary, now a
		// replica with an empty script cache). The last attempt sends the source (EVAL): on a
		// replica the script then fails READONLY, which drops that connection.
		todo = missing
	}
}

// awaitReplicas waits, on every Redis Cluster primary that ran one of calls[todo], until
// Config.ReplicaAcks replicas have acknowledged its writes or Config.ReplicaTimeout passed.
// WAIT only counts the writes of the connection it is sent on, and the cluster client spreads
// a pipeline over pooled connections, so on each primary it writes a barrier key in the slot
// of the calls (a later write than theirs) and WAITs on that same connection. An error
// (the primary gone, the slot moved) fails the batch: the calls may not be replicated, and
// running them again is harmless.
func (s *Store) awaitReplicas(ctx context.Context, calls []scriptCall, todo []int) error {
	cc := s.client.(*redis.ClusterClient)
	barriers := map[string]string{} // primary address -> a barrier key it serves
	nodes := map[string]*redis.Client{}
	for _, i := range todo {
		key := calls[i].keys[0]
		node, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return fmt.Errorf("find primary of %s: %w", key, err)
		}
		addr := node.Options().Addr
		if _, ok := barriers[addr]; !ok {
			barriers[addr], nodes[addr] = barrierKey(key), node
		}
	}
	for addr, key := range barriers {
		pipe := nodes[addr].Pipeline()
		pipe.Set(ctx, key, 1, time.Minute)
		pipe.Do(ctx, "WAIT", s.cfg.ReplicaAcks, s.cfg.ReplicaTimeout.Milliseconds())
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("wait for replicas of %s: %w", addr, err)
		}
	}
	return nil
}

// barrierKey is the replication barrier key in the slot of key: key's hash-tagged prefix
// ("<prefix>:{<shard>}:") followed by "w".
func barrierKey(key string) string {
	if i := strings.IndexByte(key, '}'); i >= 0 {
		return key[:i+1] + ":w"
	}
	return key + ":w"
}

// errScriptMissing is a batch failure: a script was missing even when sent with EVAL, which
// only a server that does not speak Redis' protocol can answer.
var errScriptMissing = errors.New("script missing from redis after loading it")

// batchFailure returns the error that failed a pipeline as a whole, or nil when every
// command either succeeded or failed on its own. Network and context errors are batch
// failures; so are Redis replies that say the server cannot serve anyone right now.
func batchFailure(execErr error, cmds []*redis.Cmd) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !ownError(err) {
			return err
		}
	}
	if execErr != nil && !ownError(execErr) {
		return execErr
	}
	return nil
}

// serverWide are prefixes of Redis error replies that concern the server or the connection,
// not the command (loading, failover, cluster resharding, out of memory, authentication):
// every command would fail the same way, and retrying the whole batch later is the cure.
var serverWide = []string{
	"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "OOM",
	"NOREPLICAS", "MOVED", "ASK", "NOAUTH", "NOPERM", "WRONGPASS", "max number of clients",
}

// ownError reports whether err is a Redis error reply about that one command.
func ownError(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := strings.TrimPrefix(rerr.Error(), "ERR ")
	for _, p := range serverWide {
		// Redis 7 passes a refusal met inside a script on with its own code first ("OOM
		// command not allowed ... script: ..."); Redis 6 wraps it ("Error running script
		// (call to f_...): @user_script:1: -OOM command not allowed ...").
		if strings.HasPrefix(msg, p) || strings.Contains(msg, ": -"+p) {
			return false
		}
	}
	return true
}

// IsUnavailable reports whether err says the store as a whole cannot serve right now rather
// than that one event or call was at fault: Redis unreachable or timing out, or a reply that
// concerns the server (LOADING, READONLY, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, BUSY, OOM,
// NOREPLICAS, an authentication failure, too many clients). Every error Store.Ping returns,
// and every whole-batch error of ApplyBatch, is one. A nil error is not.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, ErrInvalidEvent) || errors.Is(err, ErrNotFound) {
		return false
	}
	return errors.Is(err, errScriptMissing) || !ownError(err)
}

// isNoScript reports whether err says the script is not in the server's cache.
func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}
