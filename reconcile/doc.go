// Package reconcile recovers what Persona's webhooks never brought: events lost to an outage
// longer than Persona's retries, a misconfigured secret or a deleted webhook (PERSONA.md §2).
//
// A pass has two parts, both feeding the ordinary pipeline (the events stream, the worker,
// the state store), so a recovered event is applied exactly like a delivered one:
//
//   - Replay. It pages through Persona's Events API (GET /api/v1/events, filtered by the
//     inquiry event names and created-at since a checkpoint, 100 per page, following
//     links.next) and publishes every event unchanged to the events stream with Nats-Msg-Id
//     set to the event id and eventstream.HeaderSource set to eventstream.SourceReplay.
//     JetStream's duplicate window and the store's per-inquiry event memory make a replay of
//     an event already received harmless.
//   - Re-check. It walks the tracked created/pending inquiries (state.Store.OpenInquiries,
//     which reads the per-shard expiry indexes in batches) and asks Persona for 100 at a
//     time (GET /api/v1/inquiries?filter[inquiry-id]=... with the sparse fieldset
//     status,expires-at,updated-at, so no personal data travels). Every difference (another
//     status, another expires-at) becomes a synthetic event, marked by
//     eventstream.SourceSynthetic and an id starting with eventstream.SyntheticIDPrefix,
//     whose time is the inquiry's updated-at, published in updated-at order.
//
// A pass over n tracked open inquiries costs ceil(n/100) Persona calls plus one per page of
// missed events. Reconciliation runs on one replica at a time: the Reconciler holds a lease
// in Redis for the whole pass and renews it as it goes, and it saves its progress (the
// events page cursor, the walk's cursor) in a checkpoint fenced by that lease, so a pass
// that dies is continued, not restarted, by whichever replica takes the lease next. Its
// Persona calls go through a BudgetLimiter: at most a share of the shared Persona rate limit,
// and only while reminders and the resume API leave that share free.
package reconcile
