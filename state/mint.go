package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of the resume API's limits (api.Options uses them for its zero values).
const (
	// DefaultMintLimit sessions per DefaultMintWindow and inquiry keep any one inquiry far
	// from Persona's 25 sessions (PERSONA.md §6: do not mint on every page load).
	DefaultMintLimit  = 5
	DefaultMintWindow = time.Hour
	// DefaultKeyRate requests per DefaultKeyRateWindow and API key.
	DefaultKeyRate       = 60
	DefaultKeyRateWindow = time.Minute
)

// Key kinds of the limiters, under the hash tag of a shard like every other key.
const (
	kindMintLog    = "mint" // <prefix>:{<shard>}:mint:<inquiry id>  ZSET of mint times (unix ms)
	kindKeyRateLog = "akr"  // <prefix>:{<shard>}:akr:<api key name>  ZSET of request times (unix ms)
)

// mintLog is the key of an inquiry's log of mints, in the inquiry's own shard (and so its
// record's slot).
func (k keys) mintLog(inquiryID string) string {
	return k.shardPrefix(k.shard(inquiryID)) + kindMintLog + ":" + inquiryID
}

// keyRateLog is the key of an API key's log of requests, in the shard its name hashes to.
func (k keys) keyRateLog(keyName string) string {
	return k.shardPrefix(k.shard(keyName)) + kindKeyRateLog + ":" + keyName
}

// Allowance is a sliding-window limiter's answer to one request.
type Allowance struct {
	// Allowed says the request was counted and may go ahead.
	Allowed bool
	// Remaining is how many more requests the window allows after this one; 0 when denied.
	Remaining int
	// RetryAfter is, when denied, the time until the oldest counted request leaves the window
	// and one more is allowed; 0 when allowed.
	RetryAfter time.Duration
	// grant is the sorted-set member that counted an allowed request, for UndoMint.
	grant string
}

// allowScript counts one request in a sliding window, or says how long to wait.
// KEYS[1] sorted set of request times (unix ms). ARGV[1] now (unix ms), ARGV[2] limit,
// ARGV[3] window (ms), ARGV[4] unique member for this request.
// Returns {1, remaining, 0} when allowed, {0, 0, wait ms} when not.
var allowScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, 0, math.max(1, tonumber(oldest[2]) + window - now)}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, limit - n - 1, 0}
`)

// AllowMint counts one session mint for inquiryID when fewer than limit were counted in the
// sliding window before now, so a burst of page loads or clicks cannot exhaust Persona's 25
// sessions per inquiry (PERSONA.md §6). The log lives in the inquiry's shard, under
// <prefix>:{<shard>}:mint:<inquiry id>, and expires with the window; the window is measured
// on the store's clock (Config.Now), so replicas' clock skew shifts it by the skew.
//
// The error is Redis' error (nothing was counted; the caller must not mint, which keeps the
// limit safe when Redis fails), or says limit is not positive or window shorter than 1ms.
func (s *Store) AllowMint(ctx context.Context, inquiryID string, limit int, window time.Duration) (Allowance, error) {
	a, err := s.allow(ctx, s.keys.mintLog(inquiryID), limit, window)
	if err != nil {
		return Allowance{}, fmt.Errorf("allow mint for inquiry %s: %w", inquiryID, err)
	}
	return a, nil
}

// UndoMint takes back a mint AllowMint counted, when the mint is known not to have happened
// (Persona answered with an error). An Allowance that was not allowed is ignored. The error
// is Redis'; the mint then stays counted until the window passes, which errs on the safe side.
func (s *Store) UndoMint(ctx context.Context, inquiryID string, a Allowance) error {
	if !a.Allowed || a.grant == "" {
		return nil
	}
	if err := s.client.ZRem(ctx, s.keys.mintLog(inquiryID), a.grant).Err(); err != nil {
		return fmt.Errorf("undo mint for inquiry %s: %w", inquiryID, err)
	}
	return nil
}

// AllowAPIRequest counts one request of the API key named keyName when fewer than limit
// were counted in the sliding window before now: the per-key rate limit of the resume API,
// shared by every replica. The log lives under <prefix>:{<shard>}:akr:<key name> (shard:
// the name's hash), so keys spread over the cluster and each call touches one slot.
//
// The error is Redis' error (nothing was counted; the API answers 503 then), or says limit
// is not positive or window shorter than 1ms.
func (s *Store) AllowAPIRequest(ctx context.Context, keyName string, limit int, window time.Duration) (Allowance, error) {
	a, err := s.allow(ctx, s.keys.keyRateLog(keyName), limit, window)
	if err != nil {
		return Allowance{}, fmt.Errorf("allow request of api key %s: %w", keyName, err)
	}
	return a, nil
}

// allow runs allowScript on key.
func (s *Store) allow(ctx context.Context, key string, limit int, window time.Duration) (Allowance, error) {
	if limit <= 0 {
		return Allowance{}, fmt.Errorf("limit %d: must be positive", limit)
	}
	if window < time.Millisecond {
		return Allowance{}, fmt.Errorf("window %v: must be at least 1ms", window)
	}
	grant := randomToken()
	res, err := allowScript.Run(ctx, s.client, []string{key}, s.now().UnixMilli(), limit,
		window.Milliseconds(), grant).Int64Slice()
	if err != nil {
		return Allowance{}, err
	}
	if len(res) != 3 {
		return Allowance{}, errors.New("unexpected reply of the limiter script")
	}
	if res[0] != 1 {
		return Allowance{RetryAfter: time.Duration(res[2]) * time.Millisecond}, nil
	}
	return Allowance{Allowed: true, Remaining: int(res[1]), grant: grant}, nil
}
