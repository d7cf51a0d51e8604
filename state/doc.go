// Package state is everything resumer keeps in Redis: the key schema, the Lua scripts that
// change it, and the Store the worker, the notifier and the CLI use.
//
// # Records and indexes
//
// Each inquiry is one Redis hash with short field names (so Redis keeps it as a compact
// listpack) under <prefix>:{<shard>}:i:<inquiry id>, where shard = fnv32a(inquiry id) mod
// Config.Shards. Beside it, per shard:
//
//	<prefix>:{<shard>}:exp  ZSET  created/pending inquiries scored by expires-at (unix ms)
//	<prefix>:{<shard>}:due  ZSET  created/pending inquiries scored by their next unsent reminder
//	                              stage (expires-at − stage), kept by apply and the schedule
//	                              scripts; a claimed member is scored at its lease's end
//	<prefix>:{<shard>}:ret  ZSET  final inquiries scored by the time their retention ends
//	<prefix>:{<shard>}:n    HASH  status -> number of records in that status (the counters)
//
// The hash tag {<shard>} puts a record, its dedup data and its shard of every index in one
// Redis Cluster slot, so each script touches one slot (DESIGN.md decision 3). The shard count
// must never change for a given prefix: a different count files inquiries under other keys.
//
// # Applying events
//
// Store.ApplyBatch runs one atomic Lua script per event (DESIGN.md decision 2, PERSONA.md
// §2): it dedupes the event id against the last few ids the record remembers, moves the
// status only forward in event time, fills or refreshes the inquiry's fields, keeps the
// indexes and counters in step, deletes e-mail and name as soon as the inquiry can no longer
// be reminded (decision 8) and gives the record a TTL. See Outcome for what each result means
// and apply.lua for the exact rules.
//
// An event's status is its own (persona.StatusForEvent) or, for events without one
// (inquiry.transitioned, names this code does not know), the status its inquiry payload
// carries: that is the inquiry's status at the event's time, and how statuses unknown to us
// get recorded. Statuses are ordered by (event time, rank, name) with the rank created <
// pending < any unknown status < expired < completed < failed < needs_review < declined <
// approved < redacted, so events with equal times end in the same status in any order.
//
// # Retention
//
// A record whose status is not created/pending (a "final" record) is listed in the ret index
// for Config.Retention; a created/pending record is kept until Retention after its expires-at.
// Every apply script purges a few such due records of its own shard (and Store.Purge does so
// on demand), decrementing the status counters, so counters do not drift when records go.
// Every record also carries a TTL a little longer than that (the purge deadline plus
// TTLGrace), a backstop for shards that see no traffic.
package state
