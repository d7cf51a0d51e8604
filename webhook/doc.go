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
//	200  the event is stored in the stream (or was already: a duplicate PubAck), whatever
//	     object it is about and whatever optional field it lacks
//	401  the signature is missing, malformed, stale, from the future, or wrong
//	400  the body is not JSON, or not a Persona event envelope at all
//	413  the body is larger than Options.MaxBodyBytes
//	503  JetStream did not acknowledge the event in time; Retry-After is set
//
// and never answers 2xx for an event that is not stored. Persona retries every other answer
// for days (PERSONA.md §2), so a validly signed event envelope is always stored: an event
// about an inquiry or one of its parts (a session, verification or document naming its
// inquiry) goes to eventstream.Subject for the worker; an event about another object
// (account, case, report, transaction, PERSONA.md §4) goes to eventstream.OtherSubject,
// where the worker acknowledges it without applying it. An event without created-at gets
// its payload's updated-at, else the receive time (PERSONA.md §3), in the
// Persona-Event-Created-At header. Stored events are counted by object kind. It never
// touches Redis.
//
// Subjects take the deployment's prefix (Options.Subjects, RESUMER_SUBJECT_PREFIX). With a
// jetstream.JetStream (an AsyncPublisher) the receiver queues the messages of the requests
// in flight and publishes them back to back through PubAck futures (publish.go), so that
// they share the connection's writes, and still answers each request only after
// its own PubAck from its own stream; a body whose publish failed or timed out is never
// reused, since the client may still resend it.
package webhook
