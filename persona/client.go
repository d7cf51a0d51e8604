package persona

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultBaseURL is Persona's API host.
const DefaultBaseURL = "https://api.withpersona.com"

// Defaults of ClientOptions.
const (
	DefaultMaxElapsed     = 30 * time.Second
	DefaultInitialBackoff = 500 * time.Millisecond
	DefaultMaxBackoff     = 15 * time.Second
	defaultHTTPTimeout    = 15 * time.Second
	maxResponseBytes      = 4 << 20
)

// Limiter paces calls to Persona, whose rate limit is shared by every caller in one
// environment (PERSONA.md §7, DESIGN.md decision 6). The client calls Wait before every
// attempt, retries included, and Observe after every response that carries ratelimit-*
// headers. state.RateLimiter implements it in Redis so that all replicas share one budget.
type Limiter interface {
	// Wait blocks until one more request may be sent. It returns ctx's error when ctx ends
	// first; any other error means the limiter itself failed.
	Wait(ctx context.Context) error
	// Observe reports Persona's view after a response: the requests left in the current
	// window, the window's size and the time until it resets.
	Observe(ctx context.Context, remaining, limit int, reset time.Duration)
}

// ClientOptions configure NewClient. Only APIKey is required.
type ClientOptions struct {
	// BaseURL is Persona's API root; DefaultBaseURL when empty. Tests point it at a
	// personatest.Server.
	BaseURL string
	// APIKey is sent as a bearer token. Required.
	APIKey string
	// Version, when set, is sent as Persona-Version to pin the API version.
	Version string
	// HTTPClient sends the requests; a client with a 15 s timeout when nil.
	HTTPClient *http.Client
	// Limiter paces every attempt; nil means no pacing beyond Persona's own 429s.
	Limiter Limiter
	// Logger receives debug lines per response (op, status, Request-Id, never a token) and
	// one error line when the key is rejected. Nil discards.
	Logger *slog.Logger
	// Registerer receives the resumer_persona_* metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// MaxElapsed bounds the time one call spends retrying transient failures;
	// DefaultMaxElapsed when zero. The context may end it sooner.
	MaxElapsed time.Duration
	// InitialBackoff and MaxBackoff shape the jittered exponential backoff between
	// attempts; DefaultInitialBackoff and DefaultMaxBackoff when zero. A 429's
	// ratelimit-reset or a Retry-After header is the minimum wait.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// Now is the clock for retry bookkeeping; time.Now when nil.
	Now func() time.Time
}

// Client calls Persona's REST API: resume an inquiry, generate a one-time link, read and
// list inquiries. It retries transient failures (429, 5xx, network) with jittered
// exponential backoff bounded by the context and MaxElapsed, and returns final failures
// (404, 409, 401/403, other 4xx) at once. An error about Persona's answer (or its absence)
// wraps an *APIError and matches one sentinel (ErrNotFound, ...); an id that cannot be
// Persona's matches ErrNotFound without a request; a context that ends wraps ctx.Err(). A
// Client is safe for concurrent use.
type Client struct {
	base           *url.URL
	apiKey         string
	version        string
	http           *http.Client
	limiter        Limiter
	logger         *slog.Logger
	now            func() time.Time
	maxElapsed     time.Duration
	initialBackoff time.Duration
	maxBackoff     time.Duration
	metrics        clientMetrics
	// keyRejected is set once a 401/403 was logged at error level and cleared by the next
	// success, so a revoked key logs one error line, not one per call.
	keyRejected atomic.Bool
}

// NewClient returns a Client. It fails when APIKey is empty or BaseURL is not an absolute
// http(s) URL.
func NewClient(opts ClientOptions) (*Client, error) {
	if opts.APIKey == "" {
		return nil, errors.New("create persona client: empty api key")
	}
	raw := opts.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	base, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("create persona client: parse base url: %w", err)
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("create persona client: base url %q is not an absolute http(s) url", raw)
	}
	c := &Client{
		base:           base,
		apiKey:         opts.APIKey,
		version:        opts.Version,
		http:           opts.HTTPClient,
		limiter:        opts.Limiter,
		logger:         opts.Logger,
		now:            opts.Now,
		maxElapsed:     opts.MaxElapsed,
		initialBackoff: opts.InitialBackoff,
		maxBackoff:     opts.MaxBackoff,
		metrics:        newClientMetrics(opts.Registerer),
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.logger = c.logger.With("component", "persona-client")
	if c.now == nil {
		c.now = time.Now
	}
	if c.maxElapsed <= 0 {
		c.maxElapsed = DefaultMaxElapsed
	}
	if c.initialBackoff <= 0 {
		c.initialBackoff = DefaultInitialBackoff
	}
	if c.maxBackoff <= 0 {
		c.maxBackoff = DefaultMaxBackoff
	}
	if c.maxBackoff < c.initialBackoff {
		c.maxBackoff = c.initialBackoff
	}
	return c, nil
}

// endpoint returns the absolute URL of an API path under the base URL.
func (c *Client) endpoint(elem ...string) *url.URL {
	return c.base.JoinPath(elem...)
}

// call performs one logical API call: it retries transient failures and returns the body of
// the 2xx response. A POST carries one Idempotency-Key for all its attempts, so a retry of a
// request Persona did process replays the first answer instead of minting again.
func (c *Client) call(ctx context.Context, op, method string, u *url.URL) ([]byte, error) {
	var idempotencyKey string
	if method == http.MethodPost {
		idempotencyKey = newIdempotencyKey()
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = c.initialBackoff
	b.MaxInterval = c.maxBackoff
	b.MaxElapsedTime = 0 // bounded below by MaxElapsed with c.now, and by ctx
	b.Reset()
	start := c.now()
	var last error
	for attempt := 1; ; attempt++ {
		if err := c.waitLimiter(ctx, op); err != nil {
			if last != nil {
				return nil, fmt.Errorf("wait for rate limiter after %d attempts: %w (last: %w)", attempt-1, err, last)
			}
			return nil, fmt.Errorf("wait for rate limiter: %w", err)
		}
		body, err := c.attempt(ctx, op, method, u, idempotencyKey)
		if err == nil {
			return body, nil
		}
		last = err
		if ctx.Err() != nil {
			return nil, fmt.Errorf("call persona after %d attempts: %w (last: %w)", attempt, ctx.Err(), err)
		}
		if !IsTransient(err) {
			return nil, err
		}
		wait := b.NextBackOff()
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.RetryAfter > wait {
			wait = apiErr.RetryAfter
		}
		elapsed := c.now().Sub(start)
		deadline, hasDeadline := ctx.Deadline()
		if elapsed+wait > c.maxElapsed || (hasDeadline && time.Until(deadline) < wait) {
			c.logger.WarnContext(ctx, "persona call gave up", "op", op, "attempts", attempt,
				"elapsed", elapsed.String(), "err", err.Error())
			return nil, fmt.Errorf("give up after %d attempts in %s: %w", attempt, elapsed.Round(time.Millisecond), err)
		}
		c.metrics.retries.WithLabelValues(op).Inc()
		c.logger.DebugContext(ctx, "persona call retrying", "op", op, "attempt", attempt,
			"wait", wait.String(), "err", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait to retry after %d attempts: %w (last: %w)", attempt, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// waitLimiter waits for the limiter and records the time spent. A failing limiter (Redis
// down) does not stop the call: Persona's own 429s remain the backstop, so the call goes on
// and the failure is logged. Only the context's end is returned.
func (c *Client) waitLimiter(ctx context.Context, op string) error {
	if c.limiter == nil {
		return ctx.Err()
	}
	start := time.Now()
	err := c.limiter.Wait(ctx)
	c.metrics.limiterWaited.Observe(time.Since(start).Seconds())
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.logger.WarnContext(ctx, "rate limiter failed; calling persona unpaced", "op", op, "err", err.Error())
	return nil
}

// attempt sends one request and classifies the answer.
func (c *Client) attempt(ctx context.Context, op, method string, u *url.URL, idempotencyKey string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, &APIError{Op: op, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Key-Inflection", "kebab")
	if c.version != "" {
		req.Header.Set("Persona-Version", c.version)
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	c.metrics.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		c.metrics.requests.WithLabelValues(op, "error").Inc()
		return nil, &APIError{Op: op, Err: err}
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	requestID := resp.Header.Get("Request-Id")
	c.metrics.requests.WithLabelValues(op, strconv.Itoa(resp.StatusCode)).Inc()
	c.logger.DebugContext(ctx, "persona response", "op", op, "status", resp.StatusCode,
		"request_id", requestID, "duration", time.Since(start).String())
	c.observeRateLimit(ctx, resp.Header)
	if readErr != nil {
		return nil, &APIError{Op: op, RequestID: requestID, Err: fmt.Errorf("read response body: %w", readErr)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		c.keyRejected.Store(false)
		return body, nil
	}
	apiErr := &APIError{Op: op, Status: resp.StatusCode, RequestID: requestID}
	apiErr.Title, apiErr.Detail = errorBody(body)
	apiErr.RetryAfter = retryAfter(resp.Header, resp.StatusCode, time.Now())
	if errors.Is(apiErr, ErrUnauthorized) && !c.keyRejected.Swap(true) {
		c.logger.ErrorContext(ctx, "persona rejected the api key", "op", op, "status", resp.StatusCode,
			"request_id", requestID, "title", apiErr.Title)
	}
	return nil, apiErr
}

// observeRateLimit feeds the ratelimit-* headers to the gauge and the limiter.
func (c *Client) observeRateLimit(ctx context.Context, h http.Header) {
	remaining, err := strconv.Atoi(strings.TrimSpace(h.Get("Ratelimit-Remaining")))
	if err != nil {
		return
	}
	c.metrics.remaining.Set(float64(remaining))
	limit, err := strconv.Atoi(strings.TrimSpace(h.Get("Ratelimit-Limit")))
	if err != nil || limit <= 0 || c.limiter == nil {
		return
	}
	reset, _ := strconv.Atoi(strings.TrimSpace(h.Get("Ratelimit-Reset")))
	c.limiter.Observe(ctx, remaining, limit, time.Duration(max(reset, 0))*time.Second)
}

// retryAfter is the minimum wait a response asks for: Retry-After (seconds or an HTTP date),
// else ratelimit-reset on a 429.
func retryAfter(h http.Header, status int, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return time.Duration(s) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil && t.After(now) {
			return t.Sub(now)
		}
	}
	if status == http.StatusTooManyRequests {
		if s, err := strconv.Atoi(strings.TrimSpace(h.Get("Ratelimit-Reset"))); err == nil && s > 0 {
			return time.Duration(s) * time.Second
		}
	}
	return 0
}

// errorBody reads a JSON:API error document, {"errors": [{"title", "details"|"detail"}]}
// (PERSONA.md §6): the first title, and every entry's detail joined by "; ".
func errorBody(body []byte) (title, detail string) {
	root, err := parseObject(body)
	if err != nil || root == nil {
		return "", ""
	}
	entries, _ := root.objects("errors")
	var details []string
	for _, e := range entries {
		if title == "" {
			title = e.str("title")
		}
		d := e.str("details")
		if d == "" {
			d = e.str("detail")
		}
		if d != "" {
			details = append(details, d)
		}
	}
	return title, strings.Join(details, "; ")
}

// newIdempotencyKey returns a random UUIDv4 string.
func newIdempotencyKey() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
