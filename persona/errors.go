package persona

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors of the API client. Every error a Client method returns for a failed call
// matches exactly one of them with errors.Is, so a caller decides once whether to retry,
// give up or report. ErrRateLimited, ErrUnavailable and ErrStale are transient (IsTransient);
// the client has already retried them within its MaxElapsed bound before returning them. The
// others are final: retrying the same call cannot succeed.
var (
	// ErrNotFound: Persona answered 404; the inquiry does not exist in this environment.
	ErrNotFound = errors.New("persona: not found")
	// ErrNotResumable: Persona answered 409; the inquiry's status does not allow the call
	// (completed, failed, approved, declined, needs_review or redacted for resume; also
	// expired for a one-time link, PERSONA.md §6).
	ErrNotResumable = errors.New("persona: inquiry not resumable")
	// ErrUnauthorized: Persona answered 401 or 403; the API key is wrong, revoked or lacks
	// the permission. Retrying never helps; an operator must act.
	ErrUnauthorized = errors.New("persona: unauthorized")
	// ErrRejected: Persona answered another 4xx (400, 422, ...): the request is invalid or
	// exceeds a per-inquiry limit such as the 25 sessions of PERSONA.md §6.
	ErrRejected = errors.New("persona: request rejected")
	// ErrStale: Persona answered 409 "Stale object error ... Please try again": the object
	// changed under a concurrent request (PERSONA.md §6). Transient, unlike ErrNotResumable,
	// the other 409s; told apart by the error's text.
	ErrStale = errors.New("persona: stale object, try again")
	// ErrRateLimited: Persona answered 429 (PERSONA.md §7). Transient.
	ErrRateLimited = errors.New("persona: rate limited")
	// ErrUnavailable: Persona answered 5xx, or the request never got an answer (connection
	// refused, reset, timeout). Transient.
	ErrUnavailable = errors.New("persona: unavailable")
	// ErrMalformedResponse: Persona answered 2xx with a body the client cannot use (not
	// JSON, or without the session token or link the call exists for). Final.
	ErrMalformedResponse = errors.New("persona: malformed response")
)

// APIError is a failed Persona API call: an error status, or no answer at all (Status 0,
// Err set). It matches its class's sentinel with errors.Is (see Class). Its text carries the
// status, Persona's JSON:API error title and detail and the Request-Id, and never a session
// token or an API key.
type APIError struct {
	// Op is the client operation ("resume", "generate_one_time_link", "get_inquiry",
	// "list_inquiries"), the same value as the metrics' op label.
	Op string
	// Status is the HTTP status; 0 when no response arrived.
	Status int
	// RequestID is the response's Request-Id header, for Persona support.
	RequestID string
	// Title and Detail come from the first entry of the body's "errors" array; Detail joins
	// the details of all entries.
	Title  string
	Detail string
	// RetryAfter is the wait Persona asked for (Retry-After, else ratelimit-reset on a 429);
	// zero when none.
	RetryAfter time.Duration
	// Err is the transport error when Status is 0.
	Err error
}

// Error describes the failure, e.g. `persona answered 409 Conflict: Inquiry cannot be
// resumed: status is completed (request-id req_1)`.
func (e *APIError) Error() string {
	var b strings.Builder
	if e.Status == 0 {
		b.WriteString("call persona")
		if e.Err != nil {
			b.WriteString(": ")
			b.WriteString(e.Err.Error())
		}
		return b.String()
	}
	fmt.Fprintf(&b, "persona answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Title != "" {
		b.WriteString(": ")
		b.WriteString(e.Title)
	}
	if e.Detail != "" && e.Detail != e.Title {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request-id %s)", e.RequestID)
	}
	return b.String()
}

// Unwrap returns the transport error of a call that got no answer, else nil.
func (e *APIError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) and the other sentinels work on an *APIError.
func (e *APIError) Is(target error) bool { return target == e.Class() }

// Class returns the sentinel the error is classified as: ErrNotFound, ErrNotResumable,
// ErrStale, ErrUnauthorized, ErrRateLimited, ErrUnavailable, ErrMalformedResponse or
// ErrRejected.
func (e *APIError) Class() error {
	switch s := e.Status; {
	case s == 0:
		return ErrUnavailable
	case s == http.StatusNotFound:
		return ErrNotFound
	case s == http.StatusConflict && e.asksRetry():
		return ErrStale
	case s == http.StatusConflict:
		return ErrNotResumable
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return ErrUnauthorized
	case s == http.StatusTooManyRequests:
		return ErrRateLimited
	case s >= 500:
		return ErrUnavailable
	case s >= 200 && s < 300:
		return ErrMalformedResponse
	default:
		return ErrRejected
	}
}

// asksRetry reports whether the error's text asks for a retry: Persona's 409 "Stale object
// error" whose detail ends "Please try again" (PERSONA.md §6).
func (e *APIError) asksRetry() bool {
	text := strings.ToLower(e.Title + " " + e.Detail)
	return strings.Contains(text, "stale object") || strings.Contains(text, "please try again")
}

// IsTransient reports whether err is worth retrying later: a rate limit, an unavailable
// Persona or a stale-object conflict (ErrRateLimited, ErrUnavailable, ErrStale). Final errors
// (not found, not resumable, unauthorized, rejected, malformed) and nil report false.
func IsTransient(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrStale)
}
