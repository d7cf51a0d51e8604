package state

import (
	"context"
	"fmt"
)

// Purge deletes, in each shard, up to limit records whose retention is over (final records
// Config.Retention after they became final, created/pending ones Retention after their
// expires-at) and takes them out of the indexes and status counters. Every apply and every
// ClaimDue already purges a few records of its shard, so Purge is only needed where shards
// see little traffic and no notifier runs (a periodic job, the CLI). It returns how many records it deleted; the error is
// Redis' error, or says limit is not positive.
func (s *Store) Purge(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("purge records: limit %d must be positive", limit)
	}
	now := s.now().UnixMilli()
	calls := make([]scriptCall, s.cfg.Shards)
	for shard := range calls {
		calls[shard] = scriptCall{
			keys: s.keys.shardKeys(shard),
			args: []any{now, s.cfg.Retention.Milliseconds(), limit},
		}
	}
	cmds, err := s.runScript(ctx, s.purge, calls)
	if err != nil {
		return 0, fmt.Errorf("purge records: %w", err)
	}
	total := 0
	for shard, cmd := range cmds {
		n, err := cmd.Int()
		if err != nil {
			return total, fmt.Errorf("purge records of shard %d: %w", shard, err)
		}
		total += n
	}
	return total, nil
}
