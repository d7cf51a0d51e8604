// Package webhook receives Persona's webhooks: it checks the Persona-Signature header, checks
// that the body is a Persona event envelope, and publishes the raw body to JetStream, answering
// 200 only once JetStream has acknowledged the event (DESIGN.md, decision 1).
//
// The signature check (signature.go) stands on its own, like stripe-go's webhook package: a
// header parser (ParseSignatureHeader), a check (Verify) with sentinel errors for each way it
// fails, and Sign, which produces a valid header for tests and for the CLI.
//
// The Receiver (receiver.go) answers
//
//	200  the event is stored in the stream (or was already: a duplicate PubAck)
//	401  the signature is missing, malformed, stale, from the future, or wrong
//	400  the body is not a Persona event envelope
//	413  the body is larger than Options.MaxBodyBytes
//	503  JetStream did not acknowledge the event in time; Retry-After is set
//
// and never answers 2xx for an event that is not stored. It never touches Redis.
package webhook
