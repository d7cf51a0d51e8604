// Package api will serve the resume API for customer backends (POST
// /v1/inquiries/{id}/sessions, GET /v1/inquiries/{id}) and the /r/ redirect links that mint a
// session token at click time (DESIGN.md, PERSONA.md §8).
//
// The package is empty until the resume API issue lands; `resumer serve` does not offer the
// api role yet.
package api
