// Package personatest is an in-memory Persona for tests and for running resumer on a laptop
// (`resumer persona-sim`, `resumer dev`). It behaves as PERSONA.md in the shared docs says
// Persona does, so a test that passes against it exercises the same rules resumer meets in
// production; where PERSONA.md is silent the choice is documented on the handler.
//
// What it simulates:
//
//   - Inquiries with status, template, account, reference id, the email-address and
//     name-first fields and expires-at (§5: AfterCreate, AfterStart, AfterResume, also per
//     template in TemplateIntervals, so that inquiry.started can shorten the expiry; both
//     created and pending inquiries expire). The clock is Options.Now plus Advance; passing
//     expires-at (by Advance or by real time) expires the inquiry and its sessions and
//     one-time links.
//   - The API (§6, §7): POST /api/v1/inquiries/{id}/resume (HS256 JWT session tokens whose
//     exp is the inquiry's expires-at; an unused valid session is reused; expired inquiries
//     become pending; final statuses 409; unknown ids 404; more than MaxSessions 422),
//     POST .../generate-one-time-link, GET /api/v1/inquiries/{id} and GET /api/v1/inquiries
//     with filter[status], filter[reference-id], filter[inquiry-template-id], page[size],
//     page[after] and links.next. Bearer API key (401 otherwise), a fixed-window rate limit
//     with ratelimit-limit/-remaining/-reset on every API response and 429 beyond, a
//     Request-Id on every response, Idempotency-Key replay of POSTs for 24 h (marked with an
//     Idempotent-Replayed header, which is the simulator's own), and the Key-Inflection
//     request header (kebab, camel, snake).
//   - Webhooks (§1-§4): every status change is delivered to Options.WebhookURLs as a signed
//     event in Persona's envelope, retried on any answer but 200/201/202/204, optionally
//     duplicated or reordered, or without created-at (WebhookOmitCreatedAt, §3). Events
//     about other objects or an inquiry's parts (§4: account, case with
//     relationships.inquiries, report with a null inquiry, verification, document,
//     transaction) come from EmitObjectEvent.
//   - A stand-in for the hosted flow at GET /verify?inquiry-id=..&session-token=.. and
//     GET /verify?code=.. (one-time links), which marks the session used.
//   - Faults for tests: FailNext, Delay; and counters: Requests, PathRequests, RequestLog,
//     Events, Deliveries.
//
// Control API: a human (or a script) drives the simulator over HTTP under /_sim/, without
// authentication; GET /_sim/ prints the list below.
//
//	POST /_sim/inquiries                 {"reference-id","template-id","account-id","email-address","name-first","id"} -> 201 inquiry
//	GET  /_sim/inquiries                 every inquiry, newest first, any status
//	GET  /_sim/inquiries/{id}            one inquiry; meta.sessions is its session count
//	POST /_sim/inquiries/{id}/{action}   start complete fail mark-for-review approve decline expire redact
//	GET  /_sim/clock                     {"now"}
//	POST /_sim/clock/advance             {"by":"25h"}
//	POST /_sim/faults                    {"fail-next":3,"status":503,"delay":"200ms"}
//	GET  /_sim/requests                  {"total","by-path"}
//	GET  /_sim/events                    emitted events (id, name, inquiry-id, created-at)
//	POST /_sim/events                    {"name","type","inquiry-id","inquiry-ids","omit-created-at"}: an event about another object
//
// For example:
//
//	curl -s -XPOST localhost:8090/_sim/inquiries -d '{"reference-id":"user-1","email-address":"jane@example.com"}'
//	curl -s -XPOST localhost:8090/_sim/inquiries/inq_.../start
//	curl -s -XPOST localhost:8090/_sim/clock/advance -d '{"by":"25h"}'
//	curl -s -XPOST -H 'Authorization: Bearer persona_sandbox_simulator' localhost:8090/api/v1/inquiries/inq_.../resume
package personatest
