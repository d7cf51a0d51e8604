package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumer/resumer/brand"
	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/report"
	"github.com/resumer/resumer/state"
)

// Defaults for the zero values of Options.
const (
	// DefaultMinRemaining is the least time an inquiry must have left before it expires to
	// be resumed (PERSONA.md §8: at least 1 minute).
	DefaultMinRemaining = time.Minute
	// DefaultMintLimit sessions per DefaultMintWindow and inquiry (PERSONA.md §6: at most 25
	// sessions per inquiry; do not mint on every page load).
	DefaultMintLimit  = state.DefaultMintLimit
	DefaultMintWindow = state.DefaultMintWindow
	// DefaultKeyRate is the requests per minute each API key may make.
	DefaultKeyRate = state.DefaultKeyRate
	// DefaultResumeTimeout bounds one call to Persona's resume, retries included.
	DefaultResumeTimeout = 10 * time.Second
	// DefaultMaxAge is the age beyond which an inquiry is not resumed (inquiry_too_old): the
	// seed advice to check how old an inquiry is before resuming it, since a newer template
	// version may have been published.
	DefaultMaxAge = 30 * 24 * time.Hour
)

const (
	// maxBodyBytes caps a request body; the API reads none but an optional empty object.
	maxBodyBytes = 4 << 10
	// storeRetryAfter is the Retry-After of a 503 because Redis did not answer.
	storeRetryAfter = 2 * time.Second
	// upstreamRetryAfter is the least Retry-After of a 503 because Persona did not answer.
	upstreamRetryAfter = 5 * time.Second
	// keyRateWindow is the window of Options.KeyRate.
	keyRateWindow = time.Minute
)

// The routes Register serves, as http.ServeMux patterns; they are also the route label of
// the metrics.
const (
	RouteInquiry  = "GET /v1/inquiries/{inquiry_id}"
	RouteSessions = "POST /v1/inquiries/{inquiry_id}/sessions"
	// RouteRedirect is the page of a /r/ link (GET, and HEAD): it never mints.
	RouteRedirect = "GET /r/{token}"
	// RouteLinkContinue is the page's "Continue verification" button: it mints and
	// redirects.
	RouteLinkContinue = "POST /r/{token}"
)

// inquiryIDPattern is what an inquiry id must look like to be looked up: Persona's ids are
// "inq_" and letters and digits. It is a subset of what persona.Client accepts.
var inquiryIDPattern = regexp.MustCompile(`^inq_[A-Za-z0-9]{1,64}$`)

// InquiryReader reads tracked inquiries; *state.Store implements it. The error wraps
// state.ErrNotFound when the inquiry is unknown; any other error means the store failed.
type InquiryReader interface {
	Inquiry(ctx context.Context, id string) (*state.Inquiry, error)
}

// Limiter counts requests in sliding windows shared by every replica; *state.Store
// implements it. An error means nothing was counted, and the API answers 503 rather than
// go on unlimited.
type Limiter interface {
	// AllowMint counts one session mint for an inquiry.
	AllowMint(ctx context.Context, inquiryID string, limit int, window time.Duration) (state.Allowance, error)
	// UndoMint takes back a counted mint that Persona refused.
	UndoMint(ctx context.Context, inquiryID string, a state.Allowance) error
	// AllowAPIRequest counts one request of an API key.
	AllowAPIRequest(ctx context.Context, keyName string, limit int, window time.Duration) (state.Allowance, error)
}

// LinkUses remembers which single-use /r/ links were used; *state.Store implements it. The
// errors are Redis'.
type LinkUses interface {
	// UseLink marks a link used and reports whether this was the first use.
	UseLink(ctx context.Context, inquiryID, linkID string, until time.Time) (bool, error)
	// LinkUsed reports whether UseLink marked the link.
	LinkUsed(ctx context.Context, inquiryID, linkID string) (bool, error)
	// ReleaseLink takes back a use that gave the user nothing.
	ReleaseLink(ctx context.Context, inquiryID, linkID string) error
}

// FunnelMarker counts the use of reminder links in the recovery funnel; *state.Store
// implements it (see state.Store.MarkLink). An error loses that count, nothing else.
type FunnelMarker interface {
	MarkLink(ctx context.Context, inquiryID, step string) (bool, error)
}

// Store is what the API needs of resumer's state; *state.Store implements it.
type Store interface {
	InquiryReader
	Limiter
	LinkUses
	FunnelMarker
	report.Source
}

var (
	_ Store   = (*state.Store)(nil)
	_ Resumer = (*persona.Client)(nil)
)

// Resumer mints session tokens; *persona.Client implements it. Its errors match the persona
// sentinels (persona.ErrNotFound, ErrNotResumable, ErrUnavailable, ...).
type Resumer interface {
	Resume(ctx context.Context, inquiryID string) (*persona.Session, error)
}

// Options configure New. Store and Persona are required; every other zero value takes the
// default named on the field.
type Options struct {
	// Store reads inquiries and keeps the limits; normally a *state.Store.
	Store Store
	// Persona mints session tokens; normally a *persona.Client.
	Persona Resumer
	// Keys are the API keys (ParseAPIKeys of RESUMER_API_KEYS). With none, every /v1/
	// request is answered 401; /r/ works without keys.
	Keys []APIKey
	// MinRemaining is the least time before expiry an inquiry must have to be resumed;
	// DefaultMinRemaining when zero.
	MinRemaining time.Duration
	// ExpiredWithin allows resuming an expired inquiry that expired no longer ago than this
	// (Persona makes it pending again with a new expiry, PERSONA.md §6). Zero never resumes
	// an expired inquiry: old ones may be on an outdated template version.
	ExpiredWithin time.Duration
	// MintLimit session mints per MintWindow and inquiry, counted for the API and /r/
	// together; DefaultMintLimit and DefaultMintWindow when zero.
	MintLimit  int
	MintWindow time.Duration
	// KeyRate is the requests per minute each API key may make; DefaultKeyRate when zero.
	KeyRate int
	// ResumeTimeout bounds one call to Persona's resume, the client's retries included;
	// DefaultResumeTimeout when zero.
	ResumeTimeout time.Duration
	// HostedFlowURL is the base of the hosted flow URLs handed out;
	// link.DefaultHostedFlowURL when empty.
	HostedFlowURL string
	// RedirectURI, when set, is added to hosted flow URLs as redirect-uri: where Persona
	// sends the user when the flow ends.
	RedirectURI string
	// MaxAge refuses to resume inquiries created longer ago than this (inquiry_too_old): a
	// newer template version may have been published since. DefaultMaxAge when zero;
	// negative turns the check off. MaxAgeByTemplate overrides it per template id (a
	// negative value: no limit for that template).
	MaxAge           time.Duration
	MaxAgeByTemplate map[string]time.Duration
	// Fallbacks are the templates whose refusals carry a fallback_url (link.FallbackURL).
	Fallbacks link.Fallbacks
	// CurrentVersions, when set, refuses inquiries pinned to a template version older than
	// the template's current published one (inquiry_too_old, reason stale_version):
	// RESUMER_RESUME_CURRENT_VERSION_ONLY. Normally a *persona.TemplateVersions (cached).
	CurrentVersions TemplateVersions
	// Redirect verifies /r/ links and signs their forms; nil leaves /r/ unregistered.
	Redirect *link.Signer
	// SingleUseLinks makes every /r/ link open the hosted flow once: after its button was
	// pressed and a session minted, the link shows a page saying it was used (with the
	// brand's fresh_link_url, when set). RESUMER_LINK_SINGLE_USE.
	SingleUseLinks bool
	// Brands pick the brand of the /r/ pages per inquiry; nil shows neutral pages.
	Brands *brand.Set
	// Now is the clock of the resume rules and of link expiry; time.Now when nil.
	Now func() time.Time
	// Logger receives one line per request (route, status, code, key name, inquiry id; never
	// a token or a URL) with component=api; nil discards.
	Logger *slog.Logger
	// Registerer receives the resumer_api_* metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
}

// TemplateVersions tells an inquiry template's current published version;
// *persona.TemplateVersions implements it with a cache.
type TemplateVersions = persona.CurrentVersioner

// Server serves the resume API and the /r/ redirect links. It is safe for concurrent use;
// all its state is in the Store, so any number of replicas can serve side by side.
type Server struct {
	store         Store
	persona       Resumer
	keys          []APIKey
	minRemaining  time.Duration
	expiredWithin time.Duration
	mintLimit     int
	mintWindow    time.Duration
	keyRate       int
	resumeTimeout time.Duration
	hostedFlowURL string
	redirectURI   string
	signer        *link.Signer
	singleUse     bool
	brands        *brand.Set
	crossOrigin   *http.CrossOriginProtection
	pageCSP       string
	maxAgeDefault time.Duration
	// maxAgeByTemplate: template id -> maximum age, 0 for none.
	maxAgeByTemplate map[string]time.Duration
	fallbacks        link.Fallbacks
	versions         TemplateVersions
	now              func() time.Time
	logger           *slog.Logger
	metrics          metrics
}

// New returns a Server. It fails when Store or Persona is nil, a duration or limit is
// negative, MintWindow is under a millisecond, a key is invalid (see ParseAPIKeys) or used twice, HostedFlowURL or RedirectURI
// is not an absolute http(s) URL, or Redirect does not validate.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Persona == nil {
		return nil, errors.New("create api server: store and persona are required")
	}
	if opts.MinRemaining < 0 || opts.ExpiredWithin < 0 || opts.MintLimit < 0 || opts.MintWindow < 0 ||
		opts.KeyRate < 0 || opts.ResumeTimeout < 0 {
		return nil, errors.New("create api server: durations and limits must not be negative")
	}
	if err := checkKeys(opts.Keys); err != nil {
		return nil, fmt.Errorf("create api server: %w", err)
	}
	s := &Server{
		store:         opts.Store,
		persona:       opts.Persona,
		keys:          append([]APIKey(nil), opts.Keys...),
		minRemaining:  cmp.Or(opts.MinRemaining, DefaultMinRemaining),
		expiredWithin: opts.ExpiredWithin,
		mintLimit:     cmp.Or(opts.MintLimit, DefaultMintLimit),
		mintWindow:    cmp.Or(opts.MintWindow, DefaultMintWindow),
		keyRate:       cmp.Or(opts.KeyRate, DefaultKeyRate),
		resumeTimeout: cmp.Or(opts.ResumeTimeout, DefaultResumeTimeout),
		hostedFlowURL: cmp.Or(opts.HostedFlowURL, link.DefaultHostedFlowURL),
		redirectURI:   opts.RedirectURI,
		signer:        opts.Redirect,
		singleUse:     opts.SingleUseLinks,
		brands:        opts.Brands,
		crossOrigin:   http.NewCrossOriginProtection(),
		maxAgeDefault: cmp.Or(opts.MaxAge, DefaultMaxAge),
		fallbacks:     append(link.Fallbacks(nil), opts.Fallbacks...),
		versions:      opts.CurrentVersions,
		now:           opts.Now,
		logger:        opts.Logger,
		metrics:       newMetrics(opts.Registerer),
	}
	if err := checkURL(s.hostedFlowURL); err != nil {
		return nil, fmt.Errorf("create api server: hosted flow url: %w", err)
	}
	// The pages may show the brand's logo (any https image), and the continue form posts to
	// this origin and is redirected to the hosted flow, which form-action must allow.
	hosted, _ := url.Parse(s.hostedFlowURL)
	s.pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:; form-action 'self' " +
		hosted.Scheme + "://" + hosted.Host + "; frame-ancestors 'none'; base-uri 'none'"
	if s.redirectURI != "" {
		if err := checkURL(s.redirectURI); err != nil {
			return nil, fmt.Errorf("create api server: redirect uri: %w", err)
		}
	}
	if s.mintWindow < time.Millisecond {
		return nil, fmt.Errorf("create api server: mint window %v shorter than 1ms", s.mintWindow)
	}
	if s.signer != nil {
		if err := s.signer.Validate(); err != nil {
			return nil, fmt.Errorf("create api server: %w", err)
		}
		signer := *s.signer // a copy: later changes to the caller's signer do not reach us
		s.signer = &signer
	}
	s.maxAgeDefault = max(s.maxAgeDefault, 0)
	s.maxAgeByTemplate = make(map[string]time.Duration, len(opts.MaxAgeByTemplate))
	for id, d := range opts.MaxAgeByTemplate {
		s.maxAgeByTemplate[id] = max(d, 0)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.logger = s.logger.With("component", "api")
	return s, nil
}

// checkURL reports a URL that is not absolute http(s).
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an absolute http(s) url")
	}
	return nil
}

// Register adds the API's routes to mux: RouteInquiry, RouteSessions, RouteReport and, when
// Options.Redirect is set, RouteRedirect and RouteLinkContinue. Every response carries
// Cache-Control: no-store.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle(RouteInquiry, s.instrument(RouteInquiry, s.serveInquiry))
	mux.Handle(RouteSessions, s.instrument(RouteSessions, s.serveSessions))
	mux.Handle(RouteReport, s.instrument(RouteReport, s.serveReport))
	if s.signer != nil {
		mux.Handle(RouteRedirect, s.instrument(RouteRedirect, s.serveLinkPage))
		mux.Handle(RouteLinkContinue, s.instrument(RouteLinkContinue, s.serveLinkContinue))
	}
}

// request collects what one request's log line says.
type request struct {
	keyName   string
	inquiryID string
	code      Code
	note      string
	err       error
	// locale is the language of a /r/ page once the inquiry is known (pageLocale).
	locale string
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// instrument wraps a handler of route with the headers every response carries, the metrics
// and one log line. The line names the route pattern, never the path: a /r/ path is a
// credential.
func (s *Server) instrument(route string, h func(http.ResponseWriter, *http.Request, *request)) http.Handler {
	requests := s.metrics.requests
	duration := s.metrics.duration.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		hdr := w.Header()
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("X-Content-Type-Options", "nosniff")
		sw := &statusWriter{ResponseWriter: w}
		rq := &request{}
		h(sw, r, rq)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		elapsed := time.Since(start)
		duration.Observe(elapsed.Seconds())
		requests.WithLabelValues(route, fmt.Sprint(sw.status)).Inc()
		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{slog.String("route", route), slog.Int("status", sw.status),
			slog.Duration("duration", elapsed)}
		for _, a := range []struct{ k, v string }{
			{"code", string(rq.code)}, {"key", rq.keyName}, {"inquiry_id", rq.inquiryID}, {"note", rq.note},
		} {
			if a.v != "" {
				attrs = append(attrs, slog.String(a.k, a.v))
			}
		}
		if rq.err != nil {
			attrs = append(attrs, slog.String("err", rq.err.Error()))
		}
		s.logger.LogAttrs(r.Context(), level, "api request", attrs...)
	})
}

// problem answers f as a problem document and records it for the log line.
func (rq *request) problem(w http.ResponseWriter, f *failure) {
	rq.code = f.code
	if f.err != nil {
		rq.err = f.err
	}
	writeProblem(w, f)
}
