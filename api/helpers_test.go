package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/resumer/resumer/internal/testenv"
	"github.com/resumer/resumer/link"
	"github.com/resumer/resumer/persona"
	"github.com/resumer/resumer/persona/personatest"
	"github.com/resumer/resumer/state"
)

// testKeys are the API keys every test server knows, by name; the clear key is
// "key-<name>". ParseAPIKeys reads them from a RESUMER_API_KEYS value.
var testKeys = map[string]string{
	"full":    "scopes=inquiries:read,sessions:create",
	"reader":  "scopes=inquiries:read",
	"creator": "scopes=sessions:create",
	"acme":    "scopes=inquiries:read,sessions:create reference_prefix=acme-",
	"bare":    "scopes=inquiries:read,sessions:create reference_prefix=acme",
	"revoked": "scopes=inquiries:read,sessions:create revoked=true",
	"reports": "scopes=reports:read",
	"acmerep": "scopes=reports:read reference_prefix=acme-",
}

// testRedirectURI is the redirect-uri every test server adds to hosted flow URLs.
const testRedirectURI = "https://app.example.com/verified"

// countingStore counts the inquiry lookups reaching the store, for the "400 before any
// lookup" rule.
type countingStore struct {
	*state.Store
	lookups atomic.Int64
}

func (c *countingStore) Inquiry(ctx context.Context, id string) (*state.Inquiry, error) {
	c.lookups.Add(1)
	return c.Store.Inquiry(ctx, id)
}

// env is one test's world: a Persona simulator, a state store on the real test Redis, the
// API server with every response validated against api/openapi.yaml, and captured debug logs.
// The simulator's clock is everyone's clock, so sim.Advance moves the rules too.
type env struct {
	t       *testing.T
	sim     *personatest.Server
	rdb     *redis.Client
	store   *countingStore
	server  *Server
	http    *httptest.Server
	client  *http.Client
	signer  link.Signer
	logs    *testenv.Buffer
	reg     *prometheus.Registry
	applied map[string]bool
}

// envConfig adjusts a test env before it starts.
type envConfig struct {
	sim     personatest.Options
	api     func(*Options)
	persona func(*persona.ClientOptions)
	rdb     *redis.Client // a Redis of the test's own; the shared test Redis when nil
}

// newEnv starts an env; cfg may be nil.
func newEnv(t *testing.T, cfg *envConfig) *env {
	t.Helper()
	if cfg == nil {
		cfg = &envConfig{}
	}
	logs := &testenv.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sim := personatest.NewServer(t, cfg.sim)
	rdb, prefix := cfg.rdb, testenv.Prefix(t)
	if rdb == nil {
		rdb, prefix = testenv.Redis(t)
	}
	st, err := state.New(rdb, state.Config{Prefix: prefix, Shards: 4, Now: sim.Now})
	if err != nil {
		t.Fatal(err)
	}
	popts := persona.ClientOptions{BaseURL: sim.URL(), APIKey: sim.APIKey(), Logger: logger,
		MaxElapsed: 300 * time.Millisecond, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	if cfg.persona != nil {
		cfg.persona(&popts)
	}
	pc, err := persona.NewClient(popts)
	if err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	for name, fields := range testKeys {
		fmt.Fprintf(&conf, "name=%s sha256=%s %s;\n", name, HashAPIKey("key-"+name), fields)
	}
	keys, err := ParseAPIKeys(conf.String())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, sim: sim, rdb: rdb, store: &countingStore{Store: st}, logs: logs,
		reg: prometheus.NewRegistry(), applied: map[string]bool{}}
	e.signer = link.Signer{Secret: bytes.Repeat([]byte("k"), 32), PublicURL: "http://resumer.test"}
	opts := Options{
		Store:       e.store,
		Persona:     pc,
		Keys:        keys,
		RedirectURI: testRedirectURI,
		// The simulated hosted flow, so a browser can follow the redirect.
		HostedFlowURL: sim.URL() + "/verify",
		Redirect:      &e.signer,
		Now:           sim.Now,
		Logger:        logger,
		Registerer:    e.reg,
	}
	if cfg.api != nil {
		cfg.api(&opts)
	}
	if e.server, err = New(opts); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.server.Register(mux)
	e.http = httptest.NewServer(validating(t, mux))
	t.Cleanup(e.http.Close)
	e.client = &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return e
}

// create makes an inquiry in the simulator and brings its events into Redis.
func (e *env) create(p personatest.InquiryParams) string {
	e.t.Helper()
	id := e.sim.CreateInquiry(p).ID
	e.sync()
	return id
}

// sync applies every event the simulator emitted and the store has not seen, parsed from the
// exact webhook bodies (PERSONA.md §3), as the worker would.
func (e *env) sync() {
	e.t.Helper()
	var batch []*persona.Event
	for _, se := range e.sim.Events() {
		if e.applied[se.ID] {
			continue
		}
		ev, err := persona.ParseEvent(se.Body)
		if err != nil {
			e.t.Fatalf("parse simulator event %s: %v", se.ID, err)
		}
		batch = append(batch, ev)
		e.applied[se.ID] = true
	}
	e.applyEvents(batch...)
}

// applyEvents applies events to the store and fails the test on any error.
func (e *env) applyEvents(events ...*persona.Event) {
	e.t.Helper()
	if len(events) == 0 {
		return
	}
	results, err := e.store.ApplyBatch(context.Background(), events)
	if err != nil {
		e.t.Fatal(err)
	}
	for i, r := range results {
		if r.Err != nil {
			e.t.Fatalf("apply %s: %v", events[i].ID, r.Err)
		}
	}
}

// eventJSON builds a webhook body for an inquiry Persona need not know (PERSONA.md §3).
func eventJSON(eventID, name, inquiryID, status, referenceID string, at, expiresAt time.Time) []byte {
	body, _ := json.Marshal(map[string]any{"data": map[string]any{
		"type": "event", "id": eventID,
		"attributes": map[string]any{
			"name": name, "created-at": at.UTC().Format(time.RFC3339Nano),
			"payload": map[string]any{"data": map[string]any{
				"type": "inquiry", "id": inquiryID,
				"attributes": map[string]any{
					"status": status, "reference-id": referenceID,
					"created-at": at.UTC().Format(time.RFC3339Nano),
					"expires-at": expiresAt.UTC().Format(time.RFC3339Nano),
				},
			}},
		},
	}})
	return body
}

// response is a finished request: status, headers and body.
type response struct {
	status int
	header http.Header
	body   []byte
}

// problem decodes a problem document body.
func (r response) problem(t *testing.T) Problem {
	t.Helper()
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode problem (status %d): %v: %s", r.status, err, r.body)
	}
	return p
}

// do sends a request with the named test key ("" for none) and returns the response.
func (e *env) do(method, path, key string, body io.Reader) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer key-"+key)
	}
	return e.send(req)
}

// send sends req and reads the whole response.
func (e *env) send(req *http.Request) response {
	e.t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// get is GET /v1/inquiries/{id} with the named key.
func (e *env) get(id, key string) response {
	e.t.Helper()
	return e.do(http.MethodGet, "/v1/inquiries/"+id, key, nil)
}

// post is POST /v1/inquiries/{id}/sessions with the named key and no body.
func (e *env) post(id, key string) response {
	e.t.Helper()
	return e.do(http.MethodPost, "/v1/inquiries/"+id+"/sessions", key, nil)
}

// open is GET /r/{token}: the link's page, which never mints.
func (e *env) open(token string) response {
	e.t.Helper()
	return e.do(http.MethodGet, "/r/"+token, "", nil)
}

// formTokenRE finds the continue form's hidden field in a page.
var formTokenRE = regexp.MustCompile(`name="form_token" value="([^"]+)"`)

// formToken is the continue form's token in page, or "" when it has no form.
func formToken(page response) string {
	if m := formTokenRE.FindSubmatch(page.body); m != nil {
		return html.UnescapeString(string(m[1]))
	}
	return ""
}

// press submits the form of a page of /r/{token} as a same-origin browser would: POST with
// the form token (and Sec-Fetch-Site: same-origin).
func (e *env) press(token, formToken string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.http.URL+"/r/"+token,
		strings.NewReader(url.Values{"form_token": {formToken}}.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return e.send(req)
}

// follow opens the link and, when its page offers the "Continue verification" button,
// presses it: what a user does.
func (e *env) follow(token string) response {
	e.t.Helper()
	page := e.open(token)
	ft := formToken(page)
	if page.status != http.StatusOK || ft == "" {
		return page
	}
	return e.press(token, ft)
}

// link signs a redirect token for id that expires in d.
func (e *env) link(id string, d time.Duration) string {
	return e.signer.Token(id, "1h", e.sim.Now().Add(d))
}

// resumePath is the simulator's resume endpoint of id, for counting calls.
func resumePath(id string) string { return "/api/v1/inquiries/" + id + "/resume" }

// wantProblem checks a problem response's status, code, Content-Type and Retry-After.
func wantProblem(t *testing.T, r response, status int, code Code) Problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	p := r.problem(t)
	if p.Code != code || p.Status != status {
		t.Errorf("problem %+v, want code %s status %d", p, code, status)
	}
	retry := r.header.Get("Retry-After")
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if retry == "" {
			t.Errorf("%d without Retry-After", status)
		}
	default:
		if retry != "" {
			t.Errorf("%d with Retry-After %s", status, retry)
		}
	}
	return p
}
