package personatest

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/resumer/resumer/persona"
)

// defaultPageSize and maxPageSize bound GET /api/v1/inquiries pages.
const (
	defaultPageSize = 10
	maxPageSize     = 100
)

// routes registers the API, hosted-flow and control routes.
func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /api/v1/inquiries/{id}/resume", s.handleResume)
	m.HandleFunc("POST /api/v1/inquiries/{id}/generate-one-time-link", s.handleOneTimeLink)
	m.HandleFunc("GET /api/v1/inquiries/{id}", s.handleGet)
	m.HandleFunc("GET /api/v1/inquiries", s.handleList)
	m.HandleFunc("GET /api/v1/events", s.handleEvents)
	m.HandleFunc("GET /api/v1/inquiry-templates/{id}", s.handleTemplate)
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeErrors(w, r, http.StatusNotFound, "Not found", "No route "+r.Method+" "+r.URL.Path+" in the simulator.")
	})
	m.HandleFunc("GET /verify", s.handleVerify)
	s.controlRoutes(m)
	s.mux = m
}

// handleResume implements POST /api/v1/inquiries/{id}/resume (PERSONA.md §6): created and
// pending inquiries get a session token (an unused valid one is reused); an expired inquiry
// becomes pending with a new expiry AfterResume from now; other statuses answer 409, unknown
// ids 404. An inquiry that already has MaxSessions sessions answers 422: PERSONA.md states
// the limit but no status, and 422 keeps it apart from 409, which means "not resumable".
// Resuming an expired inquiry sends no webhook: Persona documents none, so resumer must not
// depend on one.
func (s *Server) handleResume(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	s.expireDueLocked(now)
	q := s.inquiries[id]
	if q == nil {
		writeErrors(w, r, http.StatusNotFound, "Record not found", "Could not find an inquiry with id "+id+".")
		return
	}
	if q.status != persona.StatusExpired && !q.status.Resumable() {
		writeErrors(w, r, http.StatusConflict, "Inquiry cannot be resumed",
			fmt.Sprintf("An inquiry with status %s cannot be resumed.", q.status))
		return
	}
	se := reusableSessionLocked(q, now)
	if se == nil && len(q.sessions) >= s.opts.MaxSessions {
		writeErrors(w, r, http.StatusUnprocessableEntity, "Too many sessions",
			fmt.Sprintf("The inquiry has reached its limit of %d sessions.", s.opts.MaxSessions))
		return
	}
	if q.status == persona.StatusExpired {
		q.status = persona.StatusPending
		q.expiresAt = now.Add(s.intervals(q.templateID).AfterResume)
		q.updatedAt = now
		se = nil // every old session was revoked at expiry
	}
	if se == nil {
		se = s.mintSessionLocked(q, now)
	}
	writeJSON(w, r, http.StatusOK, map[string]any{
		"data": inquiryResource(q),
		"meta": map[string]any{"session-token": se.token},
	})
}

// handleOneTimeLink implements POST /api/v1/inquiries/{id}/generate-one-time-link
// (PERSONA.md §6): created and pending inquiries get a single-use link valid for OneTimeLink;
// expired ones answer 409 (resume first), as do final statuses; unknown ids 404.
func (s *Server) handleOneTimeLink(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	s.expireDueLocked(now)
	q := s.inquiries[id]
	switch {
	case q == nil:
		writeErrors(w, r, http.StatusNotFound, "Record not found", "Could not find an inquiry with id "+id+".")
		return
	case q.status == persona.StatusExpired:
		writeErrors(w, r, http.StatusConflict, "Inquiry is expired", "Resume the inquiry before generating a one-time link.")
		return
	case !q.status.Resumable():
		writeErrors(w, r, http.StatusConflict, "Inquiry cannot be resumed",
			fmt.Sprintf("An inquiry with status %s cannot be resumed.", q.status))
		return
	}
	l := &oneTimeLink{code: newID(""), inquiryID: q.id, expiresAt: now.Add(s.opts.OneTimeLink)}
	s.links[l.code] = l
	writeJSON(w, r, http.StatusOK, map[string]any{
		"data": inquiryResource(q),
		"meta": map[string]any{"one-time-link": s.hostedURL(r) + "/verify?code=" + l.code},
	})
}

// handleGet implements GET /api/v1/inquiries/{id}.
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDueLocked(s.nowLocked())
	q := s.inquiries[id]
	if q == nil {
		writeErrors(w, r, http.StatusNotFound, "Record not found", "Could not find an inquiry with id "+id+".")
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"data": inquiryResource(q)})
}

// handleList implements GET /api/v1/inquiries with filter[status] (comma-separated),
// filter[reference-id], filter[inquiry-template-id], filter[inquiry-id] (comma-separated, at
// most 100 ids), fields[inquiry] (a sparse fieldset), page[size] (default 10, at most 100)
// and page[after] (PERSONA.md §7). Inquiries come newest first; links.next is a relative URL
// that keeps the filters, null on the last page. The cursor is positional, so inquiries that
// change status between pages are neither repeated nor skipped.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var statuses, ids, fieldset []string
	if v := q.Get("filter[status]"); v != "" {
		statuses = strings.Split(v, ",")
	}
	if v := q.Get("filter[inquiry-id]"); v != "" {
		ids = strings.Split(v, ",")
		if len(ids) > maxPageSize {
			writeErrors(w, r, http.StatusBadRequest, "Bad request", "filter[inquiry-id] takes at most 100 ids.")
			return
		}
	}
	if v := q.Get("fields[inquiry]"); v != "" {
		fieldset = strings.Split(v, ",")
	}
	ref, tmpl, after := q.Get("filter[reference-id]"), q.Get("filter[inquiry-template-id]"), q.Get("page[after]")
	size, ok := pageSize(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDueLocked(s.nowLocked())
	start := len(s.ordered) - 1
	if after != "" {
		cur := s.inquiries[after]
		if cur == nil {
			writeErrors(w, r, http.StatusBadRequest, "Bad request", "page[after] is not an inquiry id.")
			return
		}
		start = cur.seq - 2 // seq is 1-based: ordered[seq-1] is the cursor itself
	}
	data := []any{}
	last, more := "", false
	for i := start; i >= 0; i-- {
		inq := s.ordered[i]
		if len(statuses) > 0 && !slices.Contains(statuses, string(inq.status)) ||
			ref != "" && inq.referenceID != ref || tmpl != "" && inq.templateID != tmpl ||
			len(ids) > 0 && !slices.Contains(ids, inq.id) {
			continue
		}
		if len(data) == size {
			more = true
			break
		}
		data = append(data, sparse(inquiryResource(inq), fieldset))
		last = inq.id
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"data": data, "links": nextLinks(q, "/api/v1/inquiries", more, last, size)})
}

// pageSize reads page[size]: default 10, at most 100; it answers 400 and returns false when
// the value is out of range.
func pageSize(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("page[size]")
	if v == "" {
		return defaultPageSize, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPageSize {
		writeErrors(w, r, http.StatusBadRequest, "Bad request", "page[size] must be between 1 and 100.")
		return 0, false
	}
	return n, true
}

// nextLinks is a page's links object: links.next repeats the query with page[after]=last
// when there is more, else null.
func nextLinks(q url.Values, path string, more bool, last string, size int) map[string]any {
	links := map[string]any{"prev": nil, "next": nil}
	if more {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("page[after]", last)
		next.Set("page[size]", strconv.Itoa(size))
		links["next"] = path + "?" + next.Encode()
	}
	return links
}

// handleEvents implements GET /api/v1/events (PERSONA.md §7): every event the simulator
// emitted, delivered or not, newest first, with filter[name] (comma-separated),
// filter[created-at-start] and filter[created-at-end] (RFC 3339, inclusive), page[size]
// (default 10, at most 100) and page[after] (an event id). links.next as for inquiries.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var names []string
	if v := q.Get("filter[name]"); v != "" {
		names = strings.Split(v, ",")
	}
	var bounds [2]time.Time
	for i, key := range []string{"filter[created-at-start]", "filter[created-at-end]"} {
		if v := q.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeErrors(w, r, http.StatusBadRequest, "Bad request", key+" must be an RFC 3339 time.")
				return
			}
			bounds[i] = t
		}
	}
	size, ok := pageSize(w, r)
	if !ok {
		return
	}
	after := q.Get("page[after]")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDueLocked(s.nowLocked())
	start := len(s.events) - 1
	if after != "" {
		start = -2
		for i, ev := range s.events {
			if ev.ID == after {
				start = i - 1
				break
			}
		}
		if start == -2 {
			writeErrors(w, r, http.StatusBadRequest, "Bad request", "page[after] is not an event id.")
			return
		}
	}
	data := []any{}
	last, more := "", false
	for i := start; i >= 0; i-- {
		ev := s.events[i]
		if len(names) > 0 && !slices.Contains(names, ev.Name) ||
			!bounds[0].IsZero() && ev.CreatedAt.Before(bounds[0]) ||
			!bounds[1].IsZero() && ev.CreatedAt.After(bounds[1]) {
			continue
		}
		if len(data) == size {
			more = true
			break
		}
		data = append(data, ev.doc)
		last = ev.ID
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"data": data, "links": nextLinks(q, "/api/v1/events", more, last, size)})
}

// handleVerify is a stand-in for Persona's hosted flow (PERSONA.md §6):
// /verify?inquiry-id=..&session-token=.. or /verify?code=<one-time link>. A valid session
// or link marks the session used and answers 200; anything else answers 403 or 404. It lets a
// human follow the links resumer sends while running against the simulator.
func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	s.expireDueLocked(now)
	var inquiryID string
	switch code := q.Get("code"); {
	case code != "":
		l := s.links[code]
		if l == nil || l.used || !now.Before(l.expiresAt) {
			http.Error(w, "This one-time link is invalid, used or expired.", http.StatusForbidden)
			return
		}
		inq := s.inquiries[l.inquiryID]
		if inq == nil || !inq.status.Resumable() {
			http.Error(w, "This inquiry can no longer be resumed.", http.StatusForbidden)
			return
		}
		if len(inq.sessions) >= s.opts.MaxSessions {
			http.Error(w, "This inquiry has too many sessions.", http.StatusForbidden)
			return
		}
		l.used = true
		s.mintSessionLocked(inq, now).used = true
		inquiryID = inq.id
	default:
		inquiryID = q.Get("inquiry-id")
		inq := s.inquiries[inquiryID]
		if inq == nil {
			http.Error(w, "Unknown inquiry.", http.StatusNotFound)
			return
		}
		token := q.Get("session-token")
		if token == "" && inq.status == persona.StatusCreated {
			break // a created inquiry opens without a token
		}
		_, se, err := s.sessionLocked(inquiryID, token, now)
		if err != nil {
			http.Error(w, "Session invalid: "+err.Error()+".", http.StatusForbidden)
			return
		}
		se.used = true
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html><title>Persona simulator</title><p>Inquiry %s resumed in the simulated hosted flow.</p>",
		html.EscapeString(inquiryID))
}

// hostedURL is the base of links into the simulated hosted flow.
func (s *Server) hostedURL(r *http.Request) string {
	if s.opts.HostedURL != "" {
		return strings.TrimRight(s.opts.HostedURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
