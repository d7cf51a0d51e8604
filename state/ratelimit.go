package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/persona"
)

// Defaults of RateLimiterOptions: 80 % of Persona's 300 requests per minute (PERSONA.md §7),
// leaving room for other callers of the same Persona environment and for network jitter
// between the limiter's grant and Persona's count.
const (
	DefaultRateLimit     = 240
	DefaultRateWindow    = time.Minute
	DefaultRateThreshold = 0.15
)

// RateLimiterOptions configure NewRateLimiter.
type RateLimiterOptions struct {
	// Prefix starts every key ("resumer" when empty); keys are
	// <prefix>:{ratelimit}:<name>[:pace|:last], all in one Redis Cluster slot.
	Prefix string
	// Name distinguishes limiters under one prefix; "persona" when empty.
	Name string
	// Limit is the number of grants allowed in any sliding Window, across every replica;
	// DefaultRateLimit when zero.
	Limit int
	// Window is the sliding window; DefaultRateWindow when zero.
	Window time.Duration
	// MinInterval is the least time between two grants of any replicas, so a full window's
	// budget is not spent in one burst whose arrival at Persona jitter could push into
	// Persona's next fixed window; Window/(2*Limit) when zero, none when negative.
	MinInterval time.Duration
	// Threshold is the share of Persona's limit below which Observe slows every replica
	// down (PERSONA.md §7: throttle below 15 % remaining); DefaultRateThreshold when zero.
	Threshold float64
	// Logger receives a line when an observation cannot be stored; nil discards.
	Logger *slog.Logger
}

// RateLimiter is persona.Limiter shared by all replicas through Redis (DESIGN.md decision 6).
// Wait grants at most Limit requests in any sliding Window (a log of grant times in a sorted
// set, trimmed and counted by one Lua script), at least MinInterval apart. Observe turns
// Persona's ratelimit-* headers into a pace: when fewer than Threshold of Persona's requests
// remain in its window, the remaining ones are spread evenly until the window resets, for
// every replica. All times come from Redis's TIME inside the script, so replicas with skewed
// clocks agree.
type RateLimiter struct {
	client    redis.UniversalClient
	keys      []string
	paceKey   string
	limit     int
	window    time.Duration
	spacing   time.Duration
	threshold float64
	logger    *slog.Logger
	// turn admits one Wait of this process at a time to the shared budget, the others
	// queued in arrival order (a channel serves blocked senders first come, first served).
	turn chan struct{}
}

var _ persona.Limiter = (*RateLimiter)(nil)

// acquireScript grants one request or returns the wait in milliseconds.
// KEYS[1] sorted set of grant times (ms), KEYS[2] pace interval (ms), KEYS[3] last grant (ms).
// ARGV[1] limit, ARGV[2] window (ms), ARGV[3] unique member for this grant, ARGV[4] minimum
// spacing (ms). The spacing between grants is the larger of ARGV[4] and the pace.
var acquireScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local spacing = math.max(tonumber(ARGV[4]), tonumber(redis.call('GET', KEYS[2]) or '0'))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local wait = 0
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  wait = tonumber(oldest[2]) + window - now
end
if spacing > 0 then
  local last = tonumber(redis.call('GET', KEYS[3]) or '0')
  if last + spacing - now > wait then wait = last + spacing - now end
end
if wait > 0 then return wait end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
redis.call('SET', KEYS[3], now, 'PX', math.max(window, spacing))
return 0
`)

// NewRateLimiter returns a RateLimiter on client. It fails on a nil client, a negative Limit,
// Window or Threshold, a Threshold of 1 or more, or a Window under a millisecond.
func NewRateLimiter(client redis.UniversalClient, opts RateLimiterOptions) (*RateLimiter, error) {
	if client == nil {
		return nil, errors.New("create rate limiter: nil redis client")
	}
	if opts.Limit < 0 || opts.Window < 0 || opts.Threshold < 0 || opts.Threshold >= 1 {
		return nil, fmt.Errorf("create rate limiter: limit %d, window %s, threshold %g out of range",
			opts.Limit, opts.Window, opts.Threshold)
	}
	if opts.Prefix == "" {
		opts.Prefix = "resumer"
	}
	if opts.Name == "" {
		opts.Name = "persona"
	}
	if opts.Limit == 0 {
		opts.Limit = DefaultRateLimit
	}
	if opts.Window == 0 {
		opts.Window = DefaultRateWindow
	}
	if opts.Window < time.Millisecond {
		return nil, fmt.Errorf("create rate limiter: window %s shorter than 1ms", opts.Window)
	}
	if opts.MinInterval == 0 {
		opts.MinInterval = opts.Window / time.Duration(2*opts.Limit)
	}
	if opts.Threshold == 0 {
		opts.Threshold = DefaultRateThreshold
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	base := opts.Prefix + ":{ratelimit}:" + opts.Name
	return &RateLimiter{
		client:    client,
		keys:      []string{base, base + ":pace", base + ":last"},
		paceKey:   base + ":pace",
		limit:     opts.Limit,
		window:    opts.Window,
		spacing:   max(opts.MinInterval, 0),
		threshold: opts.Threshold,
		logger:    opts.Logger.With("component", "ratelimit", "limiter", opts.Name),
		turn:      make(chan struct{}, 1),
	}, nil
}

// availableScript counts the grants left in the sliding window on Redis's clock, and the
// milliseconds until the oldest grant leaves it. KEYS[1] sorted set of grant times (ms).
// ARGV[1] limit, ARGV[2] window (ms). It changes nothing.
var availableScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local used = redis.call('ZCOUNT', KEYS[1], '(' .. (now - window), '+inf')
local wait = 0
local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - window), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #oldest > 0 then wait = tonumber(oldest[2]) + window - now end
return { tonumber(ARGV[1]) - used, wait }
`)

// Available returns how many grants the shared budget has left right now (0 when it is used
// up) and, when it has none, how long until the next one frees up. It changes nothing; the
// error wraps Redis's.
func (l *RateLimiter) Available(ctx context.Context) (int, time.Duration, error) {
	vals, err := availableScript.Run(ctx, l.client, l.keys[:1], l.limit, l.window.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("read rate limit %s: %w", l.keys[0], err)
	}
	if len(vals) != 2 {
		return 0, 0, fmt.Errorf("read rate limit %s: unexpected reply of %d values", l.keys[0], len(vals))
	}
	left := max(int(vals[0]), 0)
	var wait time.Duration
	if left == 0 {
		wait = max(time.Duration(vals[1])*time.Millisecond, time.Millisecond)
	}
	return left, wait, nil
}

// PerHour is the number of grants the limiter allows in an hour.
func (l *RateLimiter) PerHour() float64 {
	return float64(l.limit) * float64(time.Hour) / float64(l.window)
}

// Wait blocks until the shared budget grants one request. It returns ctx.Err() when ctx
// ends first, and an error wrapping Redis's when the script cannot run (the caller decides
// whether to go on unpaced; persona.Client does).
//
// The calls of one process are granted in the order they arrive: only the first asks Redis,
// the others queue behind it. Otherwise every waiter would poll when a grant frees up and
// a random one would win, so a call (a claimed reminder) could wait while many that came
// after it, claimed later and expiring later, went first.
func (l *RateLimiter) Wait(ctx context.Context) error {
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.turn }()
	member := randomToken()
	for {
		wait, err := acquireScript.Run(ctx, l.client, l.keys, l.limit, l.window.Milliseconds(), member,
			l.spacing.Milliseconds()).Int64()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("acquire rate limit %s: %w", l.keys[0], err)
		}
		if wait <= 0 {
			return nil
		}
		// A little jitter keeps waiting replicas from retrying in lockstep.
		d := time.Duration(wait)*time.Millisecond + time.Duration(mrand.Int64N(int64(wait/20+2)))*time.Millisecond
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Observe records Persona's ratelimit-* headers. When remaining is below Threshold of limit,
// every replica's grants are spaced reset/(remaining+1) apart until reset has passed; with
// nothing remaining that is one request after the reset. A failure to store the pace is
// logged, not returned: Persona's 429s remain the backstop.
func (l *RateLimiter) Observe(ctx context.Context, remaining, limit int, reset time.Duration) {
	if limit <= 0 || remaining < 0 || float64(remaining) >= l.threshold*float64(limit) {
		return
	}
	if reset <= 0 {
		reset = l.window
	}
	interval := (reset + time.Duration(remaining+1) - 1) / time.Duration(remaining+1)
	if interval < time.Millisecond {
		return
	}
	if err := l.client.Set(ctx, l.paceKey, interval.Milliseconds(), reset).Err(); err != nil {
		l.logger.WarnContext(ctx, "store persona rate pace", "err", err.Error())
		return
	}
	l.logger.DebugContext(ctx, "persona rate limit low; pacing", "remaining", remaining, "limit", limit,
		"reset", reset.String(), "interval", interval.String())
}

// randomToken returns 24 random hex digits: a unique sorted-set member for one grant, or a
// win-back claim's token.
func randomToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// usageScript counts the grants of the current window on Redis' clock.
// KEYS[1] sorted set of grant times (ms); ARGV[1] window (ms).
var usageScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1])), '+inf')
`)

// Usage returns the grants of every replica in the current sliding window and the limit, so
// that a low-priority caller (reconciliation) can leave the room to others. The error is
// Redis's.
func (l *RateLimiter) Usage(ctx context.Context) (used, limit int, err error) {
	n, err := usageScript.Run(ctx, l.client, l.keys[:1], l.window.Milliseconds()).Int()
	if err != nil {
		return 0, l.limit, fmt.Errorf("read rate limit usage %s: %w", l.keys[0], err)
	}
	return n, l.limit, nil
}

// Window is the limiter's sliding window.
func (l *RateLimiter) Window() time.Duration { return l.window }
