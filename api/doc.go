// Package api serves the resume API for customer backends and the /r/ redirect links that
// mint a session token at click time (DESIGN.md, PERSONA.md §6 and §8). api/openapi.yaml
// describes every route, header, response and problem code; a test keeps it and the server
// in step.
//
// # Routes
//
//	GET  /v1/inquiries/{inquiry_id}           the tracked state: inquiry_id, status, expires_at,
//	                                          reference_id, resumable and, when not, reason.
//	                                          Scope inquiries:read. No personal data.
//	POST /v1/inquiries/{inquiry_id}/sessions  201 with inquiry_id, session_token,
//	                                          session_expires_at (the JWT's exp),
//	                                          inquiry_expires_at and hosted_flow_url.
//	                                          Scope sessions:create. Body: none or a JSON object.
//	GET  /r/{token}                           a link.Signer link: a small branded page with a
//	                                          "Continue verification" button (never mints).
//	POST /r/{token}                           the button: 303 to the hosted flow with a fresh
//	                                          token, or a small HTML page saying why not.
//
// # Resume rules
//
// Checked against the state in Redis before Persona is called, by the API and /r/ alike: the
// status must be created or pending with at least Options.MinRemaining (default 1m) left
// before expires-at, else 409 inquiry_expiring; an expired inquiry (by status, or by an
// expires-at already past) is resumable only when Options.ExpiredWithin is set and it expired
// no longer ago than that (Persona then makes it pending with a new expiry, which the answer's
// inquiry_expires_at carries), else 409 invalid_inquiry_state, as for every final status. An
// inquiry may have at most Options.MintLimit sessions minted per Options.MintWindow (default
// 5 per hour, far below Persona's 25 per inquiry), else 429 rate_limited. A mint Persona
// refused with an error status is not counted; one whose answer never came is.
//
// # Keys
//
// Customer backends send "Authorization: Bearer <key>". Keys are configured as SHA-256
// hashes (ParseAPIKeys, HashAPIKey, NewAPIKey), compared in constant time, each with scopes
// and an optional reference-id prefix: a key with reference_prefix=acme may only touch
// inquiries whose reference id is "acme" or continues it after one of ReferenceDelimiters
// ("acme-1", not "acmecorp-1"); any other inquiry is answered 404 like an unknown one, so a
// key cannot learn which ids exist. Each key may make
// Options.KeyRate requests per minute (default 60), counted in Redis across replicas; beyond
// that 429 rate_limited with Retry-After. The checks run in this order: key (401), scope
// (403), key rate (429), inquiry id form (400, before any lookup), body (413, 400), lookup
// (404), reference prefix (404), rules (409), mint limit (429), Persona.
//
// # Errors
//
// Every /v1/ error is an RFC 9457 application/problem+json document whose `code` is stable
// (see Code): invalid_request, unauthorized, forbidden, not_found, invalid_inquiry_state,
// inquiry_expiring, request_too_large, rate_limited, upstream_unavailable (Persona: 503 with
// Retry-After when it is down, slow or rate limited; 502 when it refused), and
// service_unavailable (Redis did not answer: 503 with Retry-After). When Redis fails nothing
// is minted: the limits fail closed.
//
// # Redirect links
//
// GET (and HEAD) /r/{token} verifies the link's HMAC and expiry and re-checks the tracked
// state, but never calls Persona: mail scanners fetch every link, and must burn nothing. A
// good link gets a page (branded by Options.Brands) whose "Continue verification" button
// POSTs a form token (link.Signer.FormToken: only this link's page carries one, valid 30
// minutes). POST /r/{token} refuses a cross-origin request or a missing, forged or stale form
// token with the page again (403, fresh token), marks a single-use link used
// (Options.SingleUseLinks), mints within the same limits and answers 303 with Location on the
// hosted flow. Every other outcome is a small HTML page that names nothing from the request:
// 400 for a malformed or tampered link, 410 for an expired or used link or a finished, unknown
// or expired inquiry, 429 for the mint limit and 503 when Redis or Persona cannot help (both
// with Retry-After). Options.Redirect nil leaves the routes unregistered.
//
// # Secrets, logs and metrics
//
// Every response carries Cache-Control: no-store; /r/ responses also Referrer-Policy:
// no-referrer. One log line per request names the route pattern (never the path, which for
// /r/ is a credential), status, problem code, key name and inquiry id; never a session token,
// a hosted flow URL or personal data. Metrics, registered on Options.Registerer:
// resumer_api_requests_total{route,code}, resumer_api_request_duration_seconds{route} (route
// is the pattern, code the HTTP status) and resumer_api_sessions_minted_total.
package api
