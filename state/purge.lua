-- purge.lua: delete up to a budget of records of one shard whose retention is over (see
-- purge in lib.lua).
--
-- KEYS: 1 expiry zset, 2 due zset, 3 retention zset, 4 status counters
-- ARGV: 1 record key prefix, 2 now (unix ms), 3 retention (ms), 4 budget
return purge(ARGV[1], KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
