-- purge.lua: delete up to a budget of records of one shard whose retention is over (see
-- purge in lib.lua).
--
-- KEYS: 1 records hash, 2 expiry zset, 3 reminder queue zset, 4 retention zset,
--       5 status counters, 6 sweep cursors (unused), 7 templates (unused), 8 leases hash
-- ARGV: 1 now (unix ms), 2 retention (ms), 3 budget
return purge(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[8],
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
