// Package state is everything resumer keeps in Redis: the key schema, the Lua scripts that
// change it, and the Store the worker, the notifier and the CLI use.
//
// # Records and indexes
//
// Inquiries are spread over Config.Shards shards: shard = fnv32a(inquiry id) mod the shard
// count. Within its shard an inquiry is named by its handle, 12 bytes derived from its id
// (splitID in pack.go; its record keeps the rest of the id). Each shard has these keys:
//
//	<prefix>:{<shard>}:r    HASH  handle -> record, one packed string (see below)
//	<prefix>:{<shard>}:x    ZSET  created/pending inquiries (handles) scored by expires-at
//	                              (unix ms): the expiry index, which the reminder sweeps walk
//	<prefix>:{<shard>}:q    ZSET  the reminder queue: released inquiries at their retry time,
//	                              those whose unsent stage a sweep has already passed at the
//	                              stage's due time, and claimed ones parked beyond any time
//	<prefix>:{<shard>}:cur  HASH  reminder stage -> "<score>:<handle>", how far that stage's
//	                              sweep has walked the expiry index; "~<stage>" ->
//	                              "<before ms>/<added ms>/<last claim ms>", the stage epoch
//	<prefix>:{<shard>}:rt   ZSET  final inquiries scored by the time their retention ends
//	<prefix>:{<shard>}:c    HASH  status -> number of records in that status (the counters)
//	<prefix>:{<shard>}:t    HASH  template id <-> the short code records keep instead
//	<prefix>:{<shard>}:l    HASH  handle -> "<lease token>|<lease end, Redis ms>|<intent>" of
//	                              the inquiries claimed and not settled
//	<prefix>:{<shard>}:hp   STRING the health probe Store.Ping writes (expires after a minute)
//
// This layout shares no key with the earlier one (a hash per inquiry under
// <prefix>:{<shard>}:i:<id>, and exp, due, ret, n per shard), whose data it does not read:
// start on an empty prefix, or delete the old keys (the records expire by their TTL, the
// shard keys do not).
//
// The hash tag {<shard>} puts a record, its dedup data and its shard of every index in one
// Redis Cluster slot, so each script touches one slot (DESIGN.md decision 3). The shard count
// must never change for a given prefix: a different count files inquiries under other keys.
//
// Memory is the reason for this shape (issue #8: a pending inquiry costs about 330-340 bytes
// of Redis memory, index entries included, down from 745). A record is a field of its
// shard's hash rather than a key of its own, which saves the key's name, object header,
// main-dictionary entry and TTL entry (about 100 bytes). It is packed into one string of
// 135-155 bytes (lib.lua documents the format: a MessagePack array, as the scripts'
// cmsgpack writes it, of the fields in a fixed order, times as differences to one of them,
// status codes; record.go's decodeRecord reads it) instead of a hash of 20 fields; Persona
// ids and event names are packed (pack.go) and the template id is a per-shard code. An
// inquiry has one sorted-set entry (about 110 bytes in a sorted set too large for a listpack)
// instead of two: the reminder schedule is derived from the expiry index. And the 12-byte
// handle takes Redis' 16-byte allocation where the 28-character id took 32, in the records
// hash and in the index. Redis' own listpack thresholds (hash-max-listpack-*,
// zset-max-listpack-*) do not matter: the shards' keys outgrow them.
//
// # Reminder schedule
//
// A created/pending inquiry's reminder stage (Config.RemindBefore) is due at its expires-at
// minus the stage. Store.ClaimDue finds due stages without scanning the tracked set
// (DESIGN.md decision 4): for each stage, a sweep walks the expiry index in (score, id) order
// from the stage's cursor up to now + the stage, claims the inquiries it meets that still
// need the stage, and moves the cursor. An inquiry the sweep has already passed but which
// needs the stage again (it became created/pending again, its expires-at moved earlier, its
// lease holder finished an earlier stage late) is put into the queue instead, at the stage's
// due time. ClaimDue takes the candidates of the queue, the sweeps and the leases that ran out
// soonest expiry first across all shards. Claims are leases whose end is on Redis's clock
// (DESIGN.md decision 5); the holder records its send intent under the lease before sending
// (RecordIntent), and a takeover returns it (Claim.Intent). A shard's first sweep of each
// stage starts at the beginning of the expiry index; a stage added to Config.RemindBefore
// later (or removed for over an hour and added back) gets an epoch: it applies only to the
// inquiries whose stage time is at or after it (Claim.StagesAdded; the others get their next
// stage). A stage is never due once a later stage (closer to expiry) is done. Replicas with
// different stage lists (a rolling deploy) schedule by the union of the stages some claim ran
// with in the last hour, so neither erases the other's, and a replica leaves a queued
// inquiry to the replicas whose configuration has the stage it waits for.
//
// # Applying events
//
// Store.ApplyBatch runs one atomic Lua script per event (DESIGN.md decision 2, PERSONA.md
// §2): it dedupes the event id against the last few ids the record remembers, moves the
// status only forward in event time, fills or refreshes the inquiry's fields, keeps the
// indexes and counters in step and deletes e-mail and name as soon as the inquiry can no
// longer be reminded (decision 8). See Outcome for what each result means and apply.lua for
// the exact rules.
//
// An event's status is its own (persona.StatusForEvent) or, for events without one
// (inquiry.transitioned, names this code does not know), the status its inquiry payload
// carries: that is the inquiry's status at the event's time, and how statuses unknown to us
// get recorded. Statuses are ordered by (event time, rank, name) with the rank created <
// pending < any unknown status < expired < completed < failed < needs_review < declined <
// approved < redacted, so events with equal times end in the same status in any order.
// The expiry is the expires-at of the newest event that carried one (at equal event times
// the largest value), which may be earlier than an older event's (PERSONA.md §5); an older
// event fills it only when none is known, and any carried value replaces one derived from
// the template interval. The record keeps the carrying event's time for that, at no cost
// when it is the time of the event that set the status (see lib.lua).
//
// # Retention
//
// A record whose status is not created/pending (a "final" record) is listed in the rt index
// for Config.Retention; a created/pending record is kept until Retention after its expires-at.
// Every apply script and every shard's ClaimDue script purges a few such due records of its
// own shard (and Store.Purge does so on demand), decrementing the status counters, so
// counters do not drift when records go. Records carry no TTL (they are hash fields), so a
// deployment whose shards see neither events nor a notifier should run Store.Purge now and
// then. Redis must not evict keys (maxmemory-policy noeviction): an evicted shard key would
// lose thousands of records or an index at once.
//
// Under noeviction a full Redis refuses writes (OOM) while it still answers PING; so does a
// replica after a failover (READONLY), a loading server (LOADING) and a cluster without a
// quorum (CLUSTERDOWN, TRYAGAIN). ApplyBatch reports every such refusal as a failure of the
// whole batch, never of one event, Store.Ping is a real write under the prefix, and
// IsUnavailable tells such errors apart, so the worker waits them out instead of counting them
// against the events.
package state
