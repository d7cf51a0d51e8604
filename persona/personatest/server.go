package personatest

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultAPIKey is the API key a Server accepts when Options.APIKey is empty.
const DefaultAPIKey = "persona_sandbox_simulator"

// Options configure a Server. Zero values take the documented defaults, which are Persona's
// (PERSONA.md §5, §6, §7).
type Options struct {
	// APIKey is the only bearer token the API accepts; DefaultAPIKey when empty.
	APIKey string
	// RateLimit is the number of API requests allowed per RateWindow (a fixed window aligned
	// to multiples of RateWindow on the simulator's clock); 300 when zero.
	RateLimit int
	// RateWindow is the rate limit's window; one minute when zero.
	RateWindow time.Duration
	// Now is the base clock; time.Now when nil. The simulator's clock is Now plus the sum of
	// all Advance calls.
	Now func() time.Time
	// JWTSecret signs session tokens (HS256); random when empty.
	JWTSecret []byte
	// AfterCreate, AfterStart and AfterResume are the expiry intervals after creation,
	// start (pending) and resume of an expired inquiry; 24 h when zero, except AfterStart,
	// which defaults to AfterCreate (PERSONA.md §5).
	AfterCreate, AfterStart, AfterResume time.Duration
	// TemplateIntervals override the intervals per inquiry template id (PERSONA.md §5:
	// intervals are set per template and independent, so after-create 7 days with
	// after-start 24 hours makes inquiry.started carry an earlier expires-at).
	TemplateIntervals map[string]Intervals
	// OneTimeLink is a one-time link's lifetime; one hour when zero.
	OneTimeLink time.Duration
	// MaxSessions is the number of sessions one inquiry may have; 25 when zero.
	MaxSessions int
	// SessionTokenLifetime, when set, makes a session token's exp claim this long after it
	// was minted, before or after the inquiry's expires-at, as Persona's own example token
	// lives 24 hours from minting (PERSONA.md §6). The session still ends with the inquiry.
	// Zero: tokens expire with the inquiry.
	SessionTokenLifetime time.Duration
	// HostedURL is the base of one-time links and of the simulated hosted flow (/verify);
	// the request's own scheme and host when empty.
	HostedURL string

	// WebhookURLs receive a signed event for every state change (PERSONA.md §1-§3).
	WebhookURLs []string
	// WebhookSecret keys the Persona-Signature HMAC.
	WebhookSecret string
	// WebhookRetryDelays are the waits before each retry of a failed delivery; the
	// delivery is abandoned after 1+len(WebhookRetryDelays) attempts. Persona's documented
	// schedule (attempts at 0, 3, 18, 83 and 258 s) when nil; tests pass milliseconds.
	WebhookRetryDelays []time.Duration
	// WebhookTimeout is how long a receiver may take to answer; 5 s when zero (PERSONA.md §2).
	WebhookTimeout time.Duration
	// WebhookKeyInflection is the events' key casing: "kebab" (default), "camel" or "snake".
	WebhookKeyInflection string
	// WebhookDuplicates delivers every event twice (same event id, fresh signature).
	WebhookDuplicates bool
	// WebhookReorder delivers events that are queued together in reverse order.
	WebhookReorder bool
	// WebhookOmitCreatedAt leaves data.attributes.created-at out of every inquiry event, as
	// some of Persona's published samples do (PERSONA.md §3); the payload's updated-at is
	// the event's time.
	WebhookOmitCreatedAt bool
	// HTTPClient delivers webhooks; a client with WebhookTimeout when nil.
	HTTPClient *http.Client

	// Logger receives a line per delivery failure and per control action; nil discards.
	Logger *slog.Logger
}

// Server is an in-memory Persona: the inquiry API, the hosted flow's /verify entry, a
// control API under /_sim/ and webhook delivery. It is an http.Handler; NewServer serves it
// on a loopback port for a test. All methods are safe for concurrent use. Close stops the
// webhook deliveries and the expiry ticker.
type Server struct {
	opts   Options
	logger *slog.Logger
	mux    *http.ServeMux
	hooks  *dispatcher
	url    string
	stop   chan struct{}
	done   sync.WaitGroup
	closed sync.Once

	// idemMu serialises requests that carry an Idempotency-Key, so that two concurrent
	// requests with the same key run the handler once.
	idemMu sync.Mutex

	mu          sync.Mutex
	offset      time.Duration
	seq         int
	inquiries   map[string]*inquiry
	ordered     []*inquiry
	links       map[string]*oneTimeLink
	idempotency map[string]*cachedResponse
	window      time.Time
	windowCount int
	failNext    int
	failStatus  int
	delay       time.Duration
	requests    int
	byPath      map[string]int
	requestLog  []RequestRecord
	events      []Event
	webhooksOff bool
	templates   map[string]*template
}

// New returns a Server with opts' defaults applied. It starts the webhook dispatcher and a
// ticker that expires inquiries as the clock passes their expires-at; call Close to stop
// them.
func New(opts Options) *Server {
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = 300
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(opts.JWTSecret) == 0 {
		opts.JWTSecret = make([]byte, 32)
		rand.Read(opts.JWTSecret)
	}
	if opts.AfterCreate <= 0 {
		opts.AfterCreate = 24 * time.Hour
	}
	if opts.AfterStart <= 0 {
		opts.AfterStart = opts.AfterCreate
	}
	if opts.AfterResume <= 0 {
		opts.AfterResume = 24 * time.Hour
	}
	if opts.OneTimeLink <= 0 {
		opts.OneTimeLink = time.Hour
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 25
	}
	if opts.WebhookRetryDelays == nil {
		opts.WebhookRetryDelays = []time.Duration{3 * time.Second, 15 * time.Second, 65 * time.Second, 175 * time.Second}
	}
	if opts.WebhookTimeout <= 0 {
		opts.WebhookTimeout = 5 * time.Second
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: opts.WebhookTimeout}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:        opts,
		logger:      logger.With("component", "persona-simulator"),
		stop:        make(chan struct{}),
		inquiries:   map[string]*inquiry{},
		links:       map[string]*oneTimeLink{},
		idempotency: map[string]*cachedResponse{},
		byPath:      map[string]int{},
		templates:   map[string]*template{},
	}
	s.hooks = newDispatcher(opts, s.logger)
	s.routes()
	s.done.Add(1)
	go s.expireLoop()
	return s
}

// NewServer starts a Server on a loopback port for the test and closes both when the test
// ends.
func NewServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := New(opts)
	hs := httptest.NewServer(s)
	s.mu.Lock()
	s.url = hs.URL
	s.mu.Unlock()
	tb.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return s
}

// URL is the base URL of a Server started by NewServer or Serve ("" for one only made by
// New): pass it as persona.ClientOptions.BaseURL.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Serve serves the simulator on ln until ctx ends, then shuts the HTTP server down (waiting
// up to 5 s for requests in flight) and closes the simulator. It is what a command such as
// `resumer persona-sim` runs. It returns nil after a shutdown caused by ctx, else the error
// that stopped serving.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.url = "http://" + ln.Addr().String()
	s.mu.Unlock()
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	defer s.Close()
	select {
	case err := <-errc:
		return fmt.Errorf("serve persona simulator: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down persona simulator: %w", err)
	}
	<-errc
	return nil
}

// APIKey is the key the API accepts.
func (s *Server) APIKey() string { return s.opts.APIKey }

// Close stops webhook deliveries (in-flight attempts are abandoned) and the expiry ticker,
// and waits for their goroutines. It does not stop an HTTP server serving s.
func (s *Server) Close() {
	s.closed.Do(func() {
		close(s.stop)
		s.hooks.close()
		s.done.Wait()
	})
}

// expireLoop expires inquiries whose expires-at passed in real time, so webhooks of expiry
// arrive without any API call.
func (s *Server) expireLoop() {
	defer s.done.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			s.expireDueLocked(s.nowLocked())
			s.mu.Unlock()
		}
	}
}

// Now is the simulator's clock: Options.Now plus every Advance.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

// nowLocked is the simulator clock at millisecond precision, the precision of Persona's
// timestamps.
func (s *Server) nowLocked() time.Time {
	return s.opts.Now().Add(s.offset).UTC().Truncate(time.Millisecond)
}

// Advance moves the simulator's clock forward by d and expires every created or pending
// inquiry whose expires-at has passed, sending inquiry.expired webhooks.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d > 0 {
		s.offset += d
	}
	s.expireDueLocked(s.nowLocked())
}

// FailNext makes the next n API requests answer status (503 when 0) with a JSON:API error
// body, after rate limiting and before authentication. A 409 is Persona's retryable "Stale
// object error ... Please try again" (PERSONA.md §6).
func (s *Server) FailNext(n, status int) {
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failStatus = n, status
}

// Delay makes every API request wait d before it is handled (0 stops delaying). A waiting
// request ends early when its client goes away.
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// RequestRecord is one API request as the simulator saw it.
type RequestRecord struct {
	Method         string
	Path           string
	RawQuery       string
	IdempotencyKey string
	RequestID      string
	// Status is the status the simulator answered.
	Status int
	// At is the arrival time on the real clock (not the simulator's), for rate assertions.
	At time.Time
}

// Requests is the number of API requests (under /api/) received, whatever their answer.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// PathRequests is the number of API requests received for one URL path, e.g.
// "/api/v1/inquiries/inq_x/resume".
func (s *Server) PathRequests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byPath[path]
}

// RequestLog returns every API request answered so far, in the order answered.
func (s *Server) RequestLog() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RequestRecord(nil), s.requestLog...)
}

// ServeHTTP serves the Persona API under /api/v1/, the hosted flow at /verify and the
// control API under /_sim/. Every response carries a Request-Id.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Request-Id", newUUID())
	if strings.HasPrefix(r.URL.Path, "/api/") {
		s.serveAPI(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}
