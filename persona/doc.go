// Package persona is resumer's domain: the Persona webhook event envelope, the inquiry and its
// statuses, and (in client.go) the client for Persona's REST API.
//
// The facts encoded here come from PERSONA.md in the shared docs: the envelope is JSON:API
// with kebab-case keys by default, but a webhook's Key-Inflection setting may switch it to
// camelCase or snake_case, so every key lookup here accepts all three. Parsing is lenient
// with nulls and missing optional fields and strict only about the few fields an event cannot
// be processed without (event id, name, created-at and the inquiry id).
//
// The package imports no other package of this module.
package persona
