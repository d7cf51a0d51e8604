package personatest

import (
	"bytes"
	"net/http"
	"time"
)

// serveAPI applies, in order: counting, the injected delay, the rate limit (headers on every
// response, 429 beyond), injected failures, authentication (401), idempotent replay for
// POSTs, and the route.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	entry := RequestRecord{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		IdempotencyKey: r.Header.Get("Idempotency-Key"), RequestID: w.Header().Get("Request-Id"),
		At: time.Now(),
	}
	s.mu.Lock()
	s.requests++
	s.byPath[r.URL.Path]++
	delay := s.delay
	s.mu.Unlock()
	defer func() {
		entry.Status = rec.status
		s.mu.Lock()
		s.requestLog = append(s.requestLog, entry)
		s.mu.Unlock()
	}()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-r.Context().Done():
			t.Stop()
			rec.status = 499 // the client went away; nothing is written
			return
		case <-t.C:
		}
	}
	if !s.admit(rec) {
		writeErrors(rec, r, http.StatusTooManyRequests, "Rate limit exceeded", "Too many requests; retry after ratelimit-reset seconds.")
		return
	}
	if status := s.takeFault(); status != 0 {
		if status == http.StatusConflict {
			// Persona's retryable conflict (PERSONA.md §6): the object changed under a
			// concurrent request.
			writeErrors(rec, r, status, "Stale object error", "The object was modified by another request. Please try again.")
			return
		}
		writeErrors(rec, r, status, http.StatusText(status), "Injected failure.")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
		writeErrors(rec, r, http.StatusUnauthorized, "Unauthorized", "Missing or invalid API key.")
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if r.Method != http.MethodPost || key == "" {
		s.mux.ServeHTTP(rec, r)
		return
	}
	s.idemMu.Lock()
	defer s.idemMu.Unlock()
	cacheKey := r.Method + " " + r.URL.Path + " " + key
	s.mu.Lock()
	cached := s.idempotency[cacheKey]
	if cached != nil && !s.nowLocked().Before(cached.expires) {
		delete(s.idempotency, cacheKey)
		cached = nil
	}
	s.mu.Unlock()
	if cached != nil {
		rec.Header().Set("Content-Type", cached.contentType)
		rec.Header().Set("Idempotent-Replayed", "true")
		rec.WriteHeader(cached.status)
		rec.Write(cached.body)
		return
	}
	buf := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	s.mux.ServeHTTP(buf, r)
	for k, v := range buf.header {
		rec.Header()[k] = v
	}
	rec.WriteHeader(buf.status)
	rec.Write(buf.body.Bytes())
	if buf.status < 500 {
		s.mu.Lock()
		s.idempotency[cacheKey] = &cachedResponse{
			status: buf.status, body: buf.body.Bytes(), contentType: buf.header.Get("Content-Type"),
			expires: s.nowLocked().Add(24 * time.Hour), // PERSONA.md §7: cached at least 24 h
		}
		s.mu.Unlock()
	}
}

// admit counts the request in the current fixed window, sets the ratelimit-* headers and
// reports whether the request is within the limit (PERSONA.md §7).
func (s *Server) admit(w http.ResponseWriter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	start := now.Truncate(s.opts.RateWindow)
	if !start.Equal(s.window) {
		s.window, s.windowCount = start, 0
	}
	s.windowCount++
	remaining := max(s.opts.RateLimit-s.windowCount, 0)
	reset := max(int((start.Add(s.opts.RateWindow).Sub(now)+time.Second-1)/time.Second), 1)
	h := w.Header()
	h.Set("Ratelimit-Limit", itoa(s.opts.RateLimit))
	h.Set("Ratelimit-Remaining", itoa(remaining))
	h.Set("Ratelimit-Reset", itoa(reset))
	return s.windowCount <= s.opts.RateLimit
}

// takeFault consumes one injected failure, returning its status or 0.
func (s *Server) takeFault() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext <= 0 {
		return 0
	}
	s.failNext--
	return s.failStatus
}

type cachedResponse struct {
	status      int
	body        []byte
	contentType string
	expires     time.Time
}

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// bufferedResponse holds a handler's response so it can be cached for idempotent replay.
type bufferedResponse struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wrote {
		b.status, b.wrote = code, true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}
