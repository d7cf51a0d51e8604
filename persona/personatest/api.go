package personatest

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

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
		q.expiresAt = now.Add(s.opts.AfterResume)
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
// filter[reference-id], filter[inquiry-template-id], page[size] (default 10, at most 100) and
// page[after] (PERSONA.md §7). Inquiries come newest first; links.next is a relative URL
// that keeps the filters, null on the last page. The cursor is positional, so inquiries that
// change status between pages are neither repeated nor skipped.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var statuses []string
	if v := q.Get("filter[status]"); v != "" {
		statuses = strings.Split(v, ",")
	}
	ref, tmpl, after := q.Get("filter[reference-id]"), q.Get("filter[inquiry-template-id]"), q.Get("page[after]")
	size := defaultPageSize
	if v := q.Get("page[size]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			writeErrors(w, r, http.StatusBadRequest, "Bad request", "page[size] must be between 1 and 100.")
			return
		}
		size = n
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
			ref != "" && inq.referenceID != ref || tmpl != "" && inq.templateID != tmpl {
			continue
		}
		if len(data) == size {
			more = true
			break
		}
		data = append(data, inquiryResource(inq))
		last = inq.id
	}
	links := map[string]any{"prev": nil, "next": nil}
	if more {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("page[after]", last)
		next.Set("page[size]", strconv.Itoa(size))
		links["next"] = "/api/v1/inquiries?" + next.Encode()
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"data": data, "links": links})
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
