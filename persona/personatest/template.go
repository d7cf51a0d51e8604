package personatest

import (
	"net/http"
	"time"
)

// template is the simulator's record of one inquiry template: its published versions, the
// last of which is current. New inquiries are pinned to the current version (the
// inquiry-template-version relationship, PERSONA.md §3).
type template struct {
	id       string
	current  string
	versions []string
	// publishedAt is when current was published.
	publishedAt time.Time
}

// templateLocked returns the template with id, creating it with a first published version.
func (s *Server) templateLocked(id string) *template {
	t := s.templates[id]
	if t == nil {
		t = &template{id: id}
		t.publish(s.nowLocked())
		s.templates[id] = t
	}
	return t
}

func (t *template) publish(now time.Time) {
	t.current = newID("itmplv_")
	t.versions = append(t.versions, t.current)
	t.publishedAt = now
}

// PublishTemplateVersion publishes a new version of the inquiry template (creating the
// template when unknown) and returns the new version's id. Inquiries created before keep
// their version; later ones get the new one.
func (s *Server) PublishTemplateVersion(templateID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.templates[templateID]
	if t == nil {
		return s.templateLocked(templateID).current
	}
	t.publish(s.nowLocked())
	return t.current
}

// TemplateVersion returns the current published version of the template ("" when the
// simulator has never seen the template).
func (s *Server) TemplateVersion(templateID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.templates[templateID]; t != nil {
		return t.current
	}
	return ""
}

// handleTemplate implements GET /api/v1/inquiry-templates/{id}: the template with its latest
// published version as the latest-published-version relationship (inferred from Persona's
// inquiry template API; PERSONA.md does not state the shape). Unknown ids answer 404.
func (s *Server) handleTemplate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.templates[id]
	if t == nil {
		writeErrors(w, r, http.StatusNotFound, "Record not found", "Could not find an inquiry template with id "+id+".")
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"data": map[string]any{
		"type": "inquiry-template",
		"id":   t.id,
		"attributes": map[string]any{
			"status":     "active",
			"updated-at": timeValue(t.publishedAt),
		},
		"relationships": map[string]any{
			"latest-published-version": map[string]any{"data": versionRef(t.current)},
		},
	}})
}
