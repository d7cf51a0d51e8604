package state

import (
	"hash/fnv"
	"strconv"
)

// Key kinds under a shard's hash tag; see the package documentation.
const (
	kindRecords  = "r"
	kindExpiry   = "x"
	kindQueue    = "q"
	kindRetained = "rt"
	kindCounts   = "c"
	kindCursors  = "cur"
	kindTemplate = "t"
	kindLeases   = "l"
	kindFunnel   = "f"
	kindProbe    = "hp"
)

// keys builds the Redis key names of one store. Every key of shard s starts with
// "<prefix>:{<s>}:", so the hash tag, and with it the Redis Cluster slot, is the shard.
type keys struct {
	prefix string
	shards uint32
}

// shard returns the shard an inquiry lives in: fnv32a(inquiry id) mod the shard count.
func (k keys) shard(inquiryID string) int {
	h := fnv.New32a()
	h.Write([]byte(inquiryID))
	return int(h.Sum32() % k.shards)
}

// shardPrefix is "<prefix>:{<shard>}:", the start of every key of the shard.
func (k keys) shardPrefix(shard int) string {
	return k.prefix + ":{" + strconv.Itoa(shard) + "}:"
}

// records is shard's hash of inquiry handle (see splitID) -> packed record.
func (k keys) records(shard int) string { return k.shardPrefix(shard) + kindRecords }

// recordsOf is the records hash that holds inquiryID's record.
func (k keys) recordsOf(inquiryID string) string { return k.records(k.shard(inquiryID)) }

// expiry is shard's expiry index: created/pending inquiries scored by expires-at (unix ms).
func (k keys) expiry(shard int) string { return k.shardPrefix(shard) + kindExpiry }

// queue is shard's reminder queue: inquiries scored by when their queued reminder is due.
func (k keys) queue(shard int) string { return k.shardPrefix(shard) + kindQueue }

// retained is shard's retention index: final inquiries scored by the end of their retention.
func (k keys) retained(shard int) string { return k.shardPrefix(shard) + kindRetained }

// counts is shard's hash of status -> number of records.
func (k keys) counts(shard int) string { return k.shardPrefix(shard) + kindCounts }

// cursors is shard's hash of reminder stage -> how far that stage's sweep has read the
// expiry index.
func (k keys) cursors(shard int) string { return k.shardPrefix(shard) + kindCursors }

// templates is shard's hash of template id <-> the short code its records keep instead.
func (k keys) templates(shard int) string { return k.shardPrefix(shard) + kindTemplate }

// leases is shard's hash of handle -> lease token, for the inquiries claimed and not settled.
func (k keys) leases(shard int) string { return k.shardPrefix(shard) + kindLeases }

// funnel is shard's funnel bucket of day ("20260107"): "<code>:<step>" -> count (see
// funnel.go).
func (k keys) funnel(shard int, day string) string {
	return k.shardPrefix(shard) + kindFunnel + ":" + day
}

// probe is shard's health-probe key, written by Store.Ping and expiring on its own.
func (k keys) probe(shard int) string { return k.shardPrefix(shard) + kindProbe }

// shardKeys are the keys of shard that the apply, purge and claim scripts get, in KEYS order.
func (k keys) shardKeys(shard int) []string {
	return []string{k.records(shard), k.expiry(shard), k.queue(shard), k.retained(shard),
		k.counts(shard), k.cursors(shard), k.templates(shard), k.leases(shard)}
}
