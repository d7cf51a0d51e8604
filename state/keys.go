package state

import (
	"hash/fnv"
	"strconv"
)

// Key kinds under a shard's hash tag; see the package documentation.
const (
	kindRecord   = "i"
	kindExpiry   = "exp"
	kindDue      = "due"
	kindRetained = "ret"
	kindCounts   = "n"
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

// recordPrefix is the part of a record key before the inquiry id; the scripts append ids to
// it when they purge records of their own shard.
func (k keys) recordPrefix(shard int) string { return k.shardPrefix(shard) + kindRecord + ":" }

// record is the key of an inquiry's record hash.
func (k keys) record(inquiryID string) string {
	return k.recordPrefix(k.shard(inquiryID)) + inquiryID
}

// expiry is shard's expiry index: created/pending inquiries scored by expires-at (unix ms).
func (k keys) expiry(shard int) string { return k.shardPrefix(shard) + kindExpiry }

// due is shard's reminder schedule: inquiries scored by their next unsent stage's due time.
func (k keys) due(shard int) string { return k.shardPrefix(shard) + kindDue }

// retained is shard's retention index: final inquiries scored by the end of their retention.
func (k keys) retained(shard int) string { return k.shardPrefix(shard) + kindRetained }

// counts is shard's hash of status -> number of records.
func (k keys) counts(shard int) string { return k.shardPrefix(shard) + kindCounts }

// shardKeys are the per-shard keys every script gets, in KEYS order after the record.
func (k keys) shardKeys(shard int) []string {
	return []string{k.expiry(shard), k.due(shard), k.retained(shard), k.counts(shard)}
}
