package api

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Code is the stable, machine-readable `code` member of a problem document (RFC 9457). Clients
// branch on it, never on title or detail, which are for people and may change.
type Code string

// The problem codes the API answers with, and their HTTP statuses.
const (
	// CodeInvalidRequest (400): the inquiry id is not of Persona's form (checked before any
	// lookup), or the request body is not a JSON object.
	CodeInvalidRequest Code = "invalid_request"
	// CodeUnauthorized (401): no API key, or one that is unknown or revoked.
	CodeUnauthorized Code = "unauthorized"
	// CodeForbidden (403): the key lacks the route's scope. An inquiry outside the key's
	// reference prefix is answered CodeNotFound, like an unknown one.
	CodeForbidden Code = "forbidden"
	// CodeNotFound (404): neither resumer nor Persona knows the inquiry, or the key's
	// reference prefix does not cover it.
	CodeNotFound Code = "not_found"
	// CodeInvalidInquiryState (409): the inquiry's status is final (completed, failed,
	// approved, ...), or it expired and may not be resumed (RESUMER_RESUME_EXPIRED_WITHIN).
	CodeInvalidInquiryState Code = "invalid_inquiry_state"
	// CodeInquiryExpiring (409): less than the minimum time (RESUMER_RESUME_MIN_REMAINING) is
	// left before the inquiry expires; a token minted now would die at once.
	CodeInquiryExpiring Code = "inquiry_expiring"
	// CodeInquiryTooOld (409): the inquiry was created longer ago than the maximum age
	// (RESUMER_RESUME_MAX_AGE, per template overridable): a newer template version may have
	// been published. The problem carries fallback_url when the template offers one.
	CodeInquiryTooOld Code = "inquiry_too_old"
	// CodeRequestTooLarge (413): the request body exceeds the cap.
	CodeRequestTooLarge Code = "request_too_large"
	// CodeRateLimited (429, with Retry-After): the key's request rate or the inquiry's
	// session mint limit is exhausted. Back off exponentially (PERSONA.md §8).
	CodeRateLimited Code = "rate_limited"
	// CodeUpstreamUnavailable: Persona is down, slow or rate limited (503, with Retry-After),
	// or answered in a way resumer cannot use (502).
	CodeUpstreamUnavailable Code = "upstream_unavailable"
	// CodeServiceUnavailable (503, with Retry-After): resumer's own state store (Redis) did
	// not answer.
	CodeServiceUnavailable Code = "service_unavailable"
)

// codeStatuses lists every code with the statuses it is sent with; the OpenAPI test checks
// that api/openapi.yaml describes each of them.
var codeStatuses = map[Code][]int{
	CodeInvalidRequest:      {http.StatusBadRequest},
	CodeUnauthorized:        {http.StatusUnauthorized},
	CodeForbidden:           {http.StatusForbidden},
	CodeNotFound:            {http.StatusNotFound},
	CodeInvalidInquiryState: {http.StatusConflict},
	CodeInquiryExpiring:     {http.StatusConflict},
	CodeInquiryTooOld:       {http.StatusConflict},
	CodeRequestTooLarge:     {http.StatusRequestEntityTooLarge},
	CodeRateLimited:         {http.StatusTooManyRequests},
	CodeUpstreamUnavailable: {http.StatusBadGateway, http.StatusServiceUnavailable},
	CodeServiceUnavailable:  {http.StatusServiceUnavailable},
}

// Problem is an RFC 9457 problem document with resumer's `code` extension member.
type Problem struct {
	// Type is "urn:resumer:problem:<code>".
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	// Detail explains this occurrence for a person. It never echoes request input.
	Detail string `json:"detail,omitempty"`
	Code   Code   `json:"code"`
	// FallbackURL, on a refusal to resume, is the static hosted-flow link that starts a new
	// inquiry for the same user, when the inquiry's template offers one (no session token).
	FallbackURL string `json:"fallback_url,omitempty"`
}

// failure is a request that cannot be served: the problem to answer with, the wait to
// suggest, and the underlying error for the log line (never sent to the client).
type failure struct {
	status     int
	code       Code
	detail     string
	retryAfter time.Duration
	err        error
	// fallbackURL is Problem.FallbackURL.
	fallbackURL string
}

// fail returns a failure without a wait or an underlying error.
func fail(status int, code Code, detail string) *failure {
	return &failure{status: status, code: code, detail: detail}
}

// writeProblem answers f as application/problem+json, with Retry-After when f has a wait.
func writeProblem(w http.ResponseWriter, f *failure) {
	h := w.Header()
	if f.retryAfter > 0 {
		h.Set("Retry-After", retryAfterSeconds(f.retryAfter))
	}
	h.Set("Content-Type", "application/problem+json")
	w.WriteHeader(f.status)
	json.NewEncoder(w).Encode(Problem{
		Type:        "urn:resumer:problem:" + string(f.code),
		Title:       http.StatusText(f.status),
		Status:      f.status,
		Detail:      f.detail,
		Code:        f.code,
		FallbackURL: f.fallbackURL,
	})
}

// writeJSON answers v as application/json with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// retryAfterSeconds formats d as Retry-After's delay-seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(max(1, math.Ceil(d.Seconds()))), 10)
}

// shortDuration formats d for people: "1h" and "10m" rather than "1h0m0s" and "10m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
