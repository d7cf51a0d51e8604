package state

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/persona"
)

// Inquiry returns the record of inquiry id. The error wraps ErrNotFound when there is none
// (never seen, or purged after its retention), or is Redis' error.
func (s *Store) Inquiry(ctx context.Context, id string) (*Inquiry, error) {
	handle, _ := splitID(id)
	got, err := s.readInquiries(ctx, []recordRef{{s.keys.shard(id), handle}})
	if err != nil {
		return nil, fmt.Errorf("read inquiry %s: %w", id, err)
	}
	if got[0] == nil || got[0].ID != id {
		// None, or another inquiry's with the same handle (see splitID).
		return nil, fmt.Errorf("read inquiry %s: %w", id, ErrNotFound)
	}
	return got[0], nil
}

// recordRef names a record: its shard and handle.
type recordRef struct {
	shard  int
	handle string
}

// readInquiries reads the records refs name, one read script per shard in one pipelined round
// trip; a ref without a record gets nil.
func (s *Store) readInquiries(ctx context.Context, refs []recordRef) ([]*Inquiry, error) {
	byShard := map[int][]int{} // shard -> positions in refs
	for i, r := range refs {
		byShard[r.shard] = append(byShard[r.shard], i)
	}
	calls := make([]scriptCall, 0, len(byShard))
	positions := make([][]int, 0, len(byShard))
	for shard, pos := range byShard {
		args := make([]any, len(pos))
		for j, i := range pos {
			args[j] = refs[i].handle
		}
		calls = append(calls, scriptCall{keys: []string{s.keys.records(shard), s.keys.templates(shard)}, args: args})
		positions = append(positions, pos)
	}
	cmds, err := s.runScript(ctx, s.read, calls)
	if err != nil {
		return nil, err
	}
	out := make([]*Inquiry, len(refs))
	for c, cmd := range cmds {
		reply, err := cmd.StringSlice()
		if err != nil {
			return nil, err
		}
		if len(reply) != 3*len(positions[c]) {
			return nil, fmt.Errorf("unexpected read reply of %d entries for %d inquiries", len(reply), len(positions[c]))
		}
		for j, i := range positions[c] {
			if reply[3*j] == "" {
				continue
			}
			if out[i], err = decodeInquiry(refs[i].handle, reply[3*j], reply[3*j+1], reply[3*j+2]); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Expiring returns up to limit created/pending inquiries whose expires-at is in [now,
// now+within], soonest first (ties by id; which of the inquiries tied at the limit are
// returned is up to the index). It reads each shard's expiry index by score
// (ZRANGEBYSCORE ... LIMIT, one pipelined round trip) and then the chosen records (a second
// one), so its cost follows limit, not the number of inquiries tracked. An inquiry whose
// record changed between the two reads in a way that takes it out of the window is left out.
// The error is Redis' error, or says within is negative or limit not positive.
func (s *Store) Expiring(ctx context.Context, within time.Duration, limit int) ([]*Inquiry, error) {
	if within < 0 || limit <= 0 {
		return nil, fmt.Errorf("list expiring inquiries: within %v must not be negative, limit %d must be positive", within, limit)
	}
	now := s.now()
	lo, hi := now.UnixMilli(), now.Add(within).UnixMilli()
	pipe := s.client.Pipeline()
	ranges := make([]*redis.ZSliceCmd, s.cfg.Shards)
	for shard := range ranges {
		ranges[shard] = pipe.ZRangeByScoreWithScores(ctx, s.keys.expiry(shard), &redis.ZRangeBy{
			Min: strconv.FormatInt(lo, 10), Max: strconv.FormatInt(hi, 10), Count: int64(limit),
		})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("list expiring inquiries: %w", err)
	}
	type entry struct {
		ref   recordRef
		score float64
	}
	var due []entry
	for shard, r := range ranges {
		for _, z := range r.Val() {
			due = append(due, entry{recordRef{shard, z.Member.(string)}, z.Score})
		}
	}
	slices.SortFunc(due, func(a, b entry) int {
		if c := cmp.Compare(a.score, b.score); c != 0 {
			return c
		}
		return cmp.Compare(a.ref.handle, b.ref.handle)
	})
	if len(due) > limit {
		due = due[:limit]
	}
	if len(due) == 0 {
		return nil, nil
	}
	refs := make([]recordRef, len(due))
	for i, e := range due {
		refs[i] = e.ref
	}
	records, err := s.readInquiries(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("list expiring inquiries: %w", err)
	}
	out := make([]*Inquiry, 0, len(due))
	for _, inq := range records {
		if inq == nil {
			continue
		}
		if !inq.Status.Resumable() || inq.ExpiresAt.UnixMilli() < lo || inq.ExpiresAt.UnixMilli() > hi {
			continue
		}
		out = append(out, inq)
	}
	slices.SortFunc(out, func(a, b *Inquiry) int {
		if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// CountExpiring returns how many created/pending inquiries expire in [now, now+within]: one
// ZCOUNT per shard in one pipelined round trip. The error is Redis' error, or says within is
// negative.
func (s *Store) CountExpiring(ctx context.Context, within time.Duration) (int64, error) {
	if within < 0 {
		return 0, fmt.Errorf("count expiring inquiries: within %v must not be negative", within)
	}
	now := s.now()
	lo := strconv.FormatInt(now.UnixMilli(), 10)
	hi := strconv.FormatInt(now.Add(within).UnixMilli(), 10)
	pipe := s.client.Pipeline()
	counts := make([]*redis.IntCmd, s.cfg.Shards)
	for shard := range counts {
		counts[shard] = pipe.ZCount(ctx, s.keys.expiry(shard), lo, hi)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("count expiring inquiries: %w", err)
	}
	var n int64
	for _, c := range counts {
		n += c.Val()
	}
	return n, nil
}

// CountByStatus returns how many records the store holds in each status (statuses with none
// are absent; records without a status, made by session events alone, are not counted): the
// per-shard counters the scripts maintain, summed in one pipelined round trip. Records
// deleted by the purge leave the counts. The error is Redis' error.
func (s *Store) CountByStatus(ctx context.Context) (map[persona.Status]int64, error) {
	pipe := s.client.Pipeline()
	shards := make([]*redis.MapStringStringCmd, s.cfg.Shards)
	for shard := range shards {
		shards[shard] = pipe.HGetAll(ctx, s.keys.counts(shard))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("count inquiries by status: %w", err)
	}
	out := make(map[persona.Status]int64)
	var errs []error
	for shard, c := range shards {
		for status, raw := range c.Val() {
			n, err := strconv.ParseInt(raw, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("shard %d status %s: %w", shard, status, err))
				continue
			}
			out[persona.Status(status)] += n
		}
	}
	for status, n := range out {
		if n <= 0 {
			delete(out, status)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("count inquiries by status: %w", err)
	}
	return out, nil
}
