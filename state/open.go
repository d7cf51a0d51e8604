package state

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// OpenCursor is a position in a walk over the tracked created/pending inquiries
// (Store.OpenInquiries): the walk goes shard by shard, and within a shard in the expiry
// index's (expires-at, handle) order. The zero OpenCursor is the beginning.
type OpenCursor struct {
	// Shard is the shard the walk is in.
	Shard int
	// Score and Handle are the last entry read in Shard (Handle "" before the first).
	Score  int64
	Handle string
}

// String encodes the cursor for a checkpoint: "<shard>:<score>:<hex handle>".
func (c OpenCursor) String() string {
	return strconv.Itoa(c.Shard) + ":" + strconv.FormatInt(c.Score, 10) + ":" + hex.EncodeToString([]byte(c.Handle))
}

// ParseOpenCursor decodes OpenCursor.String's text; "" is the zero cursor. The error says
// the text is not a cursor.
func ParseOpenCursor(s string) (OpenCursor, error) {
	if s == "" {
		return OpenCursor{}, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return OpenCursor{}, fmt.Errorf("parse open cursor %q: want shard:score:handle", s)
	}
	shard, err1 := strconv.Atoi(parts[0])
	score, err2 := strconv.ParseInt(parts[1], 10, 64)
	handle, err3 := hex.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || shard < 0 {
		return OpenCursor{}, fmt.Errorf("parse open cursor %q: malformed", s)
	}
	return OpenCursor{Shard: shard, Score: score, Handle: string(handle)}, nil
}

// after reports whether the index entry (score, handle) comes after the cursor in its shard.
func (c OpenCursor) after(score int64, handle string) bool {
	if c.Handle == "" {
		return true
	}
	return score > c.Score || score == c.Score && handle > c.Handle
}

// OpenInquiries returns up to limit tracked created/pending inquiries after cursor and the
// cursor to continue from; done is true when the walk has passed the last shard. It reads the
// per-shard expiry indexes by score (ZRANGEBYSCORE ... LIMIT) and then the chosen records in
// one pipelined round trip, so a walk over n tracked inquiries costs about n/limit + shards
// round trips of limit entries each, never a scan of everything at once (DESIGN.md decision
// 4). Batches fill across shard boundaries, so n inquiries come in ceil(n/limit) batches.
// Inquiries added or moved in the index during a walk may be missed or returned twice; a
// record gone or no longer created/pending between the two reads is left out (so a batch
// may be shorter than limit before done). The error is Redis' error, or says limit is not
// positive or the cursor's shard is out of range.
func (s *Store) OpenInquiries(ctx context.Context, cursor OpenCursor, limit int) (inquiries []*Inquiry, next OpenCursor, done bool, err error) {
	if limit <= 0 {
		return nil, cursor, false, fmt.Errorf("list open inquiries: limit %d must be positive", limit)
	}
	if cursor.Shard > s.cfg.Shards {
		return nil, cursor, false, fmt.Errorf("list open inquiries: cursor shard %d out of range", cursor.Shard)
	}
	var refs []recordRef
	for cursor.Shard < s.cfg.Shards && len(refs) < limit {
		need := limit - len(refs)
		entries, exhausted, err := s.openRange(ctx, cursor, need)
		if err != nil {
			return nil, cursor, false, fmt.Errorf("list open inquiries: %w", err)
		}
		for _, z := range entries {
			refs = append(refs, recordRef{cursor.Shard, z.Member.(string)})
			cursor.Score, cursor.Handle = int64(z.Score), z.Member.(string)
		}
		if exhausted {
			cursor = OpenCursor{Shard: cursor.Shard + 1}
		}
	}
	done = cursor.Shard >= s.cfg.Shards
	if len(refs) == 0 {
		return nil, cursor, done, nil
	}
	records, err := s.readInquiries(ctx, refs)
	if err != nil {
		return nil, cursor, false, fmt.Errorf("list open inquiries: %w", err)
	}
	out := make([]*Inquiry, 0, len(records))
	for _, inq := range records {
		if inq != nil && inq.Status.Resumable() {
			out = append(out, inq)
		}
	}
	return out, cursor, done, nil
}

// openRange reads up to need entries of cursor.Shard's expiry index after the cursor;
// exhausted says the shard has no more.
func (s *Store) openRange(ctx context.Context, cursor OpenCursor, need int) ([]redis.Z, bool, error) {
	min := "-inf"
	if cursor.Handle != "" {
		min = strconv.FormatInt(cursor.Score, 10)
	}
	// Entries tied with the cursor's score are read again and skipped; ask for enough to get
	// past them, doubling when a whole answer was ties.
	count := int64(need + 16)
	for {
		zs, err := s.client.ZRangeByScoreWithScores(ctx, s.keys.expiry(cursor.Shard), &redis.ZRangeBy{
			Min: min, Max: "+inf", Count: count,
		}).Result()
		if err != nil {
			return nil, false, err
		}
		kept := zs[:0]
		for _, z := range zs {
			if cursor.after(int64(z.Score), z.Member.(string)) {
				kept = append(kept, z)
			}
		}
		full := int64(len(zs)) == count
		if len(kept) == 0 && full {
			count *= 2
			continue
		}
		if len(kept) > need {
			return kept[:need], false, nil
		}
		return kept, !full, nil
	}
}
