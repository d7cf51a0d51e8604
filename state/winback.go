package state

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed winback.lua
var winbackLua string

// Key kinds of the win-back schedule (see winback.lua): per shard, the state of each
// inquiry's win-back, the times its entries need attention, and how far the walk of the
// retention index has got.
const (
	kindWinback       = "wb"
	kindWinbackTimes  = "wbt"
	kindWinbackCursor = "wbc"
)

// winbackKeys are the KEYS of winback.lua for shard.
func (k keys) winbackKeys(shard int) []string {
	p := k.shardPrefix(shard)
	return []string{k.records(shard), k.retained(shard), p + kindWinback, p + kindWinbackTimes, p + kindWinbackCursor}
}

// ErrWinbackLost is wrapped by WinbackIntent and SettleWinback when the claim is no longer
// the caller's: its lease ran out and another claim took the inquiry over. Nothing changed;
// the caller must not send.
var ErrWinbackLost = errors.New("win-back claim lost")

// WinbackSkew is how far behind the store's clock the walk of the retention index stays, so
// that a replica whose clock is behind cannot file an expired inquiry where the walk has
// already been.
const WinbackSkew = time.Minute

// WinbackClaim is an expired inquiry claimed for its win-back message: the record as read
// after the claim, and the claim's token for WinbackIntent and SettleWinback.
type WinbackClaim struct {
	Inquiry *Inquiry
	Token   string
}

// ClaimWinbacks claims up to limit expired inquiries, in every shard, whose expiry is younger
// than within and which have had no win-back yet: the ones whose earlier claim's lease ran out
// before a send was begun, then new ones. A claim is a lease of length lease; the walk
// follows the retention index (where an inquiry is filed when it stops being
// created/pending), so its cost follows the inquiries that became final since the last
// claim, not the tracked set. The first walk of a shard starts within ago. The error is
// Redis' error, or says an argument is not positive.
func (s *Store) ClaimWinbacks(ctx context.Context, within, lease time.Duration, limit int) ([]WinbackClaim, error) {
	if within <= 0 || lease <= 0 || limit <= 0 {
		return nil, fmt.Errorf("claim win-backs: within %v, lease %v and limit %d must be positive", within, lease, limit)
	}
	token := randomToken()
	now := s.now().UnixMilli()
	calls := make([]scriptCall, s.cfg.Shards)
	for shard := range calls {
		calls[shard] = scriptCall{keys: s.keys.winbackKeys(shard), args: []any{
			"claim", now, within.Milliseconds(), s.cfg.Retention.Milliseconds(), lease.Milliseconds(), token, limit,
			WinbackSkew.Milliseconds(),
		}}
	}
	cmds, err := s.runScript(ctx, s.winback, calls)
	if err != nil {
		return nil, fmt.Errorf("claim win-backs: %w", err)
	}
	var refs []recordRef
	for shard, cmd := range cmds {
		handles, err := cmd.StringSlice()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("claim win-backs in shard %d: %w", shard, err)
		}
		for _, h := range handles {
			refs = append(refs, recordRef{shard, h})
		}
	}
	if len(refs) == 0 {
		return nil, nil
	}
	records, err := s.readInquiries(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("claim win-backs: %w", err)
	}
	out := make([]WinbackClaim, 0, len(records))
	for _, inq := range records {
		if inq != nil {
			out = append(out, WinbackClaim{Inquiry: inq, Token: token})
		}
	}
	return out, nil
}

// WinbackIntent records that the holder of claim is about to send the win-back. From then on
// the inquiry never gets another win-back, whatever happens to the sender (at most once). The
// error wraps ErrWinbackLost when the claim is no longer the caller's, or is Redis' error.
func (s *Store) WinbackIntent(ctx context.Context, c WinbackClaim) error {
	return s.winbackOp(ctx, c, "intent", s.now().UnixMilli(), s.cfg.Retention.Milliseconds())
}

// SettleWinback ends the claim. With a zero retryAt the win-back is done, with outcome (a
// short label such as "sent" or "too_old") recorded. With a retryAt and no intent recorded
// yet, the claim is kept until then and a later ClaimWinbacks takes it over: a transient
// failure before anything was sent. The error wraps ErrWinbackLost when neither the claim nor
// its intent is the caller's, or is Redis' error.
func (s *Store) SettleWinback(ctx context.Context, c WinbackClaim, outcome string, retryAt time.Time) error {
	retry := ""
	if !retryAt.IsZero() {
		retry = fmt.Sprint(retryAt.UnixMilli())
	}
	return s.winbackOp(ctx, c, "settle", s.now().UnixMilli(), s.cfg.Retention.Milliseconds(), outcome, retry)
}

func (s *Store) winbackOp(ctx context.Context, c WinbackClaim, op string, args ...any) error {
	if c.Inquiry == nil {
		return fmt.Errorf("%s win-back: no inquiry", op)
	}
	id := c.Inquiry.ID
	handle, _ := splitID(id)
	cmds, err := s.runScript(ctx, s.winback, []scriptCall{{
		keys: s.keys.winbackKeys(s.keys.shard(id)),
		args: append([]any{op, handle, c.Token}, args...),
	}})
	if err != nil {
		return fmt.Errorf("%s win-back of %s: %w", op, id, err)
	}
	n, err := cmds[0].Int()
	if err != nil {
		return fmt.Errorf("%s win-back of %s: %w", op, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s win-back of %s: %w", op, id, ErrWinbackLost)
	}
	return nil
}
