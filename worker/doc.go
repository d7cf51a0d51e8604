// Package worker applies the Persona events the webhook receiver stored in JetStream to the
// inquiry state in Redis (DESIGN.md, decisions 2, 9 and 10).
//
// A Worker reads the events stream through a durable pull consumer that any number of
// replicas share (jetstream's Messages iterator, which keeps a buffer of fetched messages). It
// takes messages in batches and hands each batch to the state store in one call (one
// pipelined Redis round trip) while it decodes the next batch, and acknowledges a message
// only once the store has confirmed it:
//
//	store applied, or found it a duplicate, stale or ignorable   Ack
//	store could not apply this one event                         NakWithDelay (growing delay);
//	                                                             at delivery MaxDeliver, copy to
//	                                                             the dead-letter stream, then Term
//	store unavailable (the whole batch failed: unreachable, or   hold: stop taking, InProgress
//	refusing writes with OOM, READONLY, LOADING, ...)            what is held, probe the store
//	                                                             with a write, apply again
//	body is not a Persona event, or the store calls it invalid   copy to the dead-letter stream,
//	                                                             then Term
//
// Dead-lettering is the worker's decision, from the message's delivery count and only for a
// failure of that event: the consumer redelivers without limit, and holding never spends a
// delivery, so an outage of the store, however long, dead-letters nothing, and no message is
// left in the stream neither applied nor dead-lettered. Copies are published with a
// Nats-Msg-Id derived from the stream sequence, so a copy made twice is stored once.
//
// Run retries the consumer's creation (logging the server's reason) until it succeeds; Ready
// says whether the worker consumes, for a readiness probe.
//
// ListDeadLetters and ReplayDeadLetters are the tools behind `resumer dlq list` and
// `resumer dlq replay`: a replayed dead letter goes back to the events stream with its original
// body and headers, and the state store's own deduplication by event id keeps a replay safe.
//
// InquiryMetrics (inquiry_metrics.go) keeps the resumer_inquiries gauges fresh from the store's
// counts.
package worker
