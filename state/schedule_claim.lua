-- schedule_claim.lua: claim the due reminders of one shard with a lease (lib.lua is
-- prepended). DESIGN.md decisions 4 and 5.
--
-- KEYS: 1 due zset of the shard
-- ARGV: 1 record key prefix of the shard   2 now (unix ms)   3 lease (ms)   4 limit
--       5 lease token prefix (random per call; the claim's position is appended)
--
-- Reads up to limit members scored at or before now (ZRANGEBYSCORE ... LIMIT, so the cost
-- follows the due work, not the tracked set) and, for each, writes a fresh lease token to the
-- record ('ls') and re-scores the member to now + lease: a claim nobody settles becomes due
-- again when the lease runs out, and the next claim takes it over. A member whose record is
-- gone (purged, or expired by its TTL) is removed instead.
--
-- Returns a flat array, 10 entries per claim: id, status, expires-at, reference id, e-mail,
-- first name, rm, attempts ('ra'), lease token, '1' when the claim took over an earlier
-- lease that was never settled ('0' otherwise). Missing fields are ''.

local due = KEYS[1]
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local until_ = int(now + tonumber(ARGV[3]))
local tokens = ARGV[5]

local out = {}
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', int(now), 'LIMIT', 0, tonumber(ARGV[4]))
for i, id in ipairs(ids) do
  local rec = prefix .. id
  local f = redis.call('HMGET', rec, 's', 'x', 'r', 'em', 'nf', 'rm', 'ra', 'ls')
  if not f[1] and not f[2] then
    redis.call('ZREM', due, id)
  else
    local token = tokens .. '.' .. i
    redis.call('HSET', rec, 'ls', token)
    redis.call('ZADD', due, until_, id)
    out[#out + 1] = id
    for j = 1, 7 do
      out[#out + 1] = f[j] or ''
    end
    out[#out + 1] = token
    out[#out + 1] = f[8] and '1' or '0'
  end
end
return out
