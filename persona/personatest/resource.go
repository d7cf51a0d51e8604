package personatest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// timestampLayout is Persona's timestamp format (PERSONA.md §3).
const timestampLayout = "2006-01-02T15:04:05.000Z"

// timeValue renders a timestamp, or JSON null for the zero time.
func timeValue(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timestampLayout)
}

// stringValue renders a string, or JSON null when empty.
func stringValue(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// inquiryResource renders the inquiry as a JSON:API resource object with kebab-case keys,
// the shape of both API responses and webhook payloads (PERSONA.md §3).
func inquiryResource(q *inquiry) map[string]any {
	fields := map[string]any{
		"email-address": map[string]any{"type": "string", "value": stringValue(q.emailAddress)},
		"name-first":    map[string]any{"type": "string", "value": stringValue(q.nameFirst)},
	}
	if q.locale != "" {
		fields["locale"] = map[string]any{"type": "string", "value": q.locale}
	}
	sessions := make([]any, 0, len(q.sessions))
	for _, se := range q.sessions {
		sessions = append(sessions, map[string]any{"type": "inquiry-session", "id": se.id})
	}
	return map[string]any{
		"type": "inquiry",
		"id":   q.id,
		"attributes": map[string]any{
			"status":               string(q.status),
			"reference-id":         stringValue(q.referenceID),
			"note":                 nil,
			"tags":                 []any{},
			"created-at":           timeValue(q.createdAt),
			"started-at":           timeValue(q.startedAt),
			"expires-at":           timeValue(q.expiresAt),
			"completed-at":         timeValue(q.completedAt),
			"failed-at":            timeValue(q.failedAt),
			"marked-for-review-at": timeValue(q.markedAt),
			"decisioned-at":        timeValue(q.decidedAt),
			"expired-at":           timeValue(q.expiredAt),
			"redacted-at":          timeValue(q.redactedAt),
			"updated-at":           timeValue(q.updatedAt),
			"fields":               fields,
		},
		"relationships": map[string]any{
			"inquiry-template":         map[string]any{"data": map[string]any{"type": "inquiry-template", "id": q.templateID}},
			"inquiry-template-version": map[string]any{"data": versionRef(q.templateVersion)},
			"account":                  map[string]any{"data": map[string]any{"type": "account", "id": q.accountID}},
			"sessions":                 map[string]any{"data": sessions},
		},
	}
}

// versionRef is the resource identifier of a template version, or JSON null.
func versionRef(id string) any {
	if id == "" {
		return nil
	}
	return map[string]any{"type": "inquiry-template-version", "id": id}
}

// sparse applies a sparse fieldset (fields[inquiry]=status,expires-at, PERSONA.md §7) to a
// resource: only the named attributes stay, and relationships go unless named. An empty
// fieldset leaves the resource whole.
func sparse(res map[string]any, fieldset []string) map[string]any {
	if len(fieldset) == 0 {
		return res
	}
	attrs := res["attributes"].(map[string]any)
	rels := res["relationships"].(map[string]any)
	keptAttrs, keptRels := map[string]any{}, map[string]any{}
	for _, f := range fieldset {
		if v, ok := attrs[f]; ok {
			keptAttrs[f] = v
		}
		if v, ok := rels[f]; ok {
			keptRels[f] = v
		}
	}
	out := map[string]any{"type": res["type"], "id": res["id"], "attributes": keptAttrs}
	if len(keptRels) > 0 {
		out["relationships"] = keptRels
	}
	return out
}

// writeJSON writes doc with the key casing the request's Key-Inflection header asks for
// (kebab by default; PERSONA.md §7).
func writeJSON(w http.ResponseWriter, r *http.Request, status int, doc map[string]any) {
	body, err := json.Marshal(inflect(doc, r.Header.Get("Key-Inflection")))
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(body)
}

// writeErrors writes a JSON:API error document {"errors": [{"status", "title", "details"}]}
// (PERSONA.md §6).
func writeErrors(w http.ResponseWriter, r *http.Request, status int, title, details string) {
	writeJSON(w, r, status, map[string]any{"errors": []any{map[string]any{
		"status": strconv.Itoa(status), "title": title, "details": details,
	}}})
}

// inflect returns v with every object key converted from kebab-case to the casing named by
// inflection ("camel" or "snake"); other values leave v unchanged.
func inflect(v any, inflection string) any {
	var conv func(string) string
	switch strings.ToLower(inflection) {
	case "camel", "camelcase", "lower_camel":
		conv = camelKey
	case "snake", "snake_case", "snakecase":
		conv = func(k string) string { return strings.ReplaceAll(k, "-", "_") }
	default:
		return v
	}
	var walk func(any) any
	walk = func(v any) any {
		switch t := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(t))
			for k, e := range t {
				out[conv(k)] = walk(e)
			}
			return out
		case []any:
			out := make([]any, len(t))
			for i, e := range t {
				out[i] = walk(e)
			}
			return out
		}
		return v
	}
	return walk(v)
}

func camelKey(k string) string {
	parts := strings.Split(k, "-")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

const idAlphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// newID returns prefix followed by 24 random base58 characters, like Persona's ids.
func newID(prefix string) string {
	var b [24]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return prefix + string(b[:])
}

// newUUID returns a random UUIDv4, the shape of Persona's Request-Id.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func itoa(n int) string { return strconv.Itoa(n) }
