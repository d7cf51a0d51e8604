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
//	store could not apply this one event                         NakWithDelay (growing delay)
//	store unreachable (the whole batch failed)                   NakWithDelay every message,
//	                                                             pause until the store answers
//	body is not a Persona event, or the store calls it invalid   copy to the dead-letter stream,
//	                                                             then Term
//
// A message JetStream gives up on after MaxDeliver deliveries is announced by a JetStream
// advisory; every replica listens for it and copies the message to the dead-letter stream with
// reason "max_deliveries". Copies are published with a Nats-Msg-Id derived from the stream
// sequence, so the replicas that see the same advisory store one dead letter.
//
// ListDeadLetters and ReplayDeadLetters are the tools behind `resumer dlq list` and
// `resumer dlq replay`: a replayed dead letter goes back to the events stream with its original
// body and headers, and the state store's own deduplication by event id keeps a replay safe.
//
// InquiryMetrics (inquiry_metrics.go) keeps the resumer_inquiries gauges fresh from the store's
// counts.
package worker
