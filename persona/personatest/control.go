package personatest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// controlHelp is served at GET /_sim/.
const controlHelp = `Persona simulator control API (no authentication; for tests and laptops only)

POST /_sim/inquiries                 {"reference-id","template-id","account-id","email-address","name-first","id"} -> 201 inquiry
GET  /_sim/inquiries                 every inquiry, newest first, any status
GET  /_sim/inquiries/{id}            one inquiry; meta.sessions is its session count
POST /_sim/inquiries/{id}/{action}   action: start complete fail mark-for-review approve decline expire redact
                                     -> 200 inquiry, 404 unknown id, 409 status does not allow it
GET  /_sim/clock                     {"now"}
POST /_sim/clock/advance             {"by":"25h"} -> {"now"}; expires inquiries past expires-at
POST /_sim/faults                    {"fail-next":3,"status":503,"delay":"200ms"} -> 204
                                     (status 409: the retryable "Stale object error")
GET  /_sim/requests                  {"total", "by-path": {path: n}}
GET  /_sim/events                    [{"id","name","inquiry-id","created-at","delivered"}]
POST /_sim/events                    {"name","type","id","inquiry-id","inquiry-ids","omit-created-at","omit-updated-at"}
                                     an event about another object or an inquiry's part (account.created,
                                     case.created, report/watchlist.ready, verification.passed, ...) -> 201 {"id"}
POST /_sim/webhooks                  {"enabled":false} -> 204; while off, events reach only GET /api/v1/events
POST /_sim/templates/{id}/publish    -> {"version"}; new inquiries of the template get the new version
`

// controlRoutes registers the /_sim/ control API described in controlHelp.
func (s *Server) controlRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /_sim/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, controlHelp)
	})
	m.HandleFunc("POST /_sim/inquiries", s.controlCreate)
	m.HandleFunc("GET /_sim/inquiries", s.controlList)
	m.HandleFunc("GET /_sim/inquiries/{id}", s.controlGet)
	m.HandleFunc("POST /_sim/inquiries/{id}/{action}", s.controlAction)
	m.HandleFunc("GET /_sim/clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusOK, map[string]any{"now": timeValue(s.Now())})
	})
	m.HandleFunc("POST /_sim/clock/advance", s.controlAdvance)
	m.HandleFunc("POST /_sim/faults", s.controlFaults)
	m.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		byPath := make(map[string]any, len(s.byPath))
		for p, n := range s.byPath {
			byPath[p] = n
		}
		total := s.requests
		s.mu.Unlock()
		writeJSON(w, r, http.StatusOK, map[string]any{"total": total, "by-path": byPath})
	})
	m.HandleFunc("POST /_sim/webhooks", func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Enabled *bool `json:"enabled"`
		}
		if !decodeControl(w, r, &p) {
			return
		}
		if p.Enabled == nil {
			writeErrors(w, r, http.StatusBadRequest, "Bad request", `want {"enabled": true|false}`)
			return
		}
		s.SetWebhooks(*p.Enabled)
		s.logger.Info("webhook delivery switched by control api", "enabled", *p.Enabled)
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/templates/{id}/publish", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusOK, map[string]any{"version": s.PublishTemplateVersion(r.PathValue("id"))})
	})
	m.HandleFunc("POST /_sim/events", func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Name          string   `json:"name"`
			Type          string   `json:"type"`
			ID            string   `json:"id"`
			InquiryID     string   `json:"inquiry-id"`
			InquiryIDs    []string `json:"inquiry-ids"`
			OmitCreatedAt bool     `json:"omit-created-at"`
			OmitUpdatedAt bool     `json:"omit-updated-at"`
		}
		if !decodeControl(w, r, &p) {
			return
		}
		if p.Name == "" {
			writeErrors(w, r, http.StatusBadRequest, "Bad request", `want {"name": "account.created", ...}`)
			return
		}
		ev := s.EmitObjectEvent(ObjectEvent{Name: p.Name, Type: p.Type, ID: p.ID, InquiryID: p.InquiryID,
			InquiryIDs: p.InquiryIDs, OmitCreatedAt: p.OmitCreatedAt, OmitUpdatedAt: p.OmitUpdatedAt})
		writeJSON(w, r, http.StatusCreated, map[string]any{"id": ev.ID})
	})
	m.HandleFunc("GET /_sim/events", func(w http.ResponseWriter, r *http.Request) {
		out := []any{}
		for _, ev := range s.Events() {
			out = append(out, map[string]any{"id": ev.ID, "name": ev.Name, "inquiry-id": ev.InquiryID,
				"created-at": timeValue(ev.CreatedAt), "delivered": ev.Delivered})
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		json.NewEncoder(w).Encode(out)
	})
}

// decodeControl reads a small JSON control body into v; an empty body leaves v as it is.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(v)
	if err != nil && !errors.Is(err, io.EOF) {
		writeErrors(w, r, http.StatusBadRequest, "Bad request", "decode body: "+err.Error())
		return false
	}
	return true
}

func (s *Server) controlCreate(w http.ResponseWriter, r *http.Request) {
	var p struct {
		ID           string `json:"id"`
		ReferenceID  string `json:"reference-id"`
		TemplateID   string `json:"template-id"`
		AccountID    string `json:"account-id"`
		EmailAddress string `json:"email-address"`
		NameFirst    string `json:"name-first"`
		Locale       string `json:"locale"`
	}
	if !decodeControl(w, r, &p) {
		return
	}
	inq := s.CreateInquiry(InquiryParams(p))
	s.logger.Info("inquiry created by control api", "inquiry_id", inq.ID)
	s.writeInquiry(w, r, http.StatusCreated, inq.ID)
}

func (s *Server) controlList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDueLocked(s.nowLocked())
	data := []any{}
	for i := len(s.ordered) - 1; i >= 0; i-- {
		data = append(data, inquiryResource(s.ordered[i]))
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"data": data})
}

func (s *Server) controlGet(w http.ResponseWriter, r *http.Request) {
	s.writeInquiry(w, r, http.StatusOK, r.PathValue("id"))
}

func (s *Server) controlAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if _, ok := transitions[action]; !ok {
		writeErrors(w, r, http.StatusNotFound, "Not found", "Unknown action "+action+".")
		return
	}
	if err := s.apply(id, action); err != nil {
		status := http.StatusConflict
		if errors.Is(err, ErrUnknownInquiry) {
			status = http.StatusNotFound
		}
		writeErrors(w, r, status, http.StatusText(status), err.Error())
		return
	}
	s.logger.Info("inquiry changed by control api", "inquiry_id", id, "action", action)
	s.writeInquiry(w, r, http.StatusOK, id)
}

func (s *Server) controlAdvance(w http.ResponseWriter, r *http.Request) {
	var p struct {
		By string `json:"by"`
	}
	if !decodeControl(w, r, &p) {
		return
	}
	d, err := time.ParseDuration(p.By)
	if err != nil || d < 0 {
		writeErrors(w, r, http.StatusBadRequest, "Bad request", `"by" must be a non-negative Go duration such as "25h".`)
		return
	}
	s.Advance(d)
	writeJSON(w, r, http.StatusOK, map[string]any{"now": timeValue(s.Now())})
}

func (s *Server) controlFaults(w http.ResponseWriter, r *http.Request) {
	var p struct {
		FailNext int    `json:"fail-next"`
		Status   int    `json:"status"`
		Delay    string `json:"delay"`
	}
	if !decodeControl(w, r, &p) {
		return
	}
	var delay time.Duration
	if p.Delay != "" {
		var err error
		if delay, err = time.ParseDuration(p.Delay); err != nil || delay < 0 {
			writeErrors(w, r, http.StatusBadRequest, "Bad request", `"delay" must be a non-negative Go duration.`)
			return
		}
	}
	if p.Status != 0 && (p.Status < 400 || p.Status > 599) {
		writeErrors(w, r, http.StatusBadRequest, "Bad request", `"status" must be a 4xx or 5xx status.`)
		return
	}
	s.FailNext(p.FailNext, p.Status)
	s.Delay(delay)
	w.WriteHeader(http.StatusNoContent)
}

// writeInquiry writes {"data": <inquiry>, "meta": {"sessions": n}} or a 404.
func (s *Server) writeInquiry(w http.ResponseWriter, r *http.Request, status int, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDueLocked(s.nowLocked())
	q := s.inquiries[id]
	if q == nil {
		writeErrors(w, r, http.StatusNotFound, "Record not found", "Could not find an inquiry with id "+id+".")
		return
	}
	writeJSON(w, r, status, map[string]any{"data": inquiryResource(q), "meta": map[string]any{"sessions": len(q.sessions)}})
}
