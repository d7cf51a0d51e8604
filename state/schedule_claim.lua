-- schedule_claim.lua: claim the due reminders of one shard with a lease (lib.lua is
-- prepended). DESIGN.md decisions 4 and 5.
--
-- KEYS: 1 records hash, 2 expiry zset, 3 reminder queue zset, 4 retention zset,
--       5 status counters, 6 sweep cursors, 7 templates (unused), 8 leases hash
-- ARGV: 1 now (unix ms)   2 lease (ms)   3 limit
--       4 lease token prefix (random per call; the claim's position is appended)
--       5 reminder stages "<name>:<before ms>,..." (longest first)
--       6 the store's clock (unix ms)   7 retention (ms)   8 purge budget
--
-- First the queue: members scored at or before now (ZRANGEBYSCORE ... LIMIT). Then, while
-- fewer than limit are claimed, each stage's sweep: the expiry index after the stage's cursor
-- up to now + the stage, read by rank from the cursor's position (ZRANGE ... LIMIT), so the
-- cost follows the due work, not the tracked set. The sweep passes, without claiming, an
-- inquiry that has the stage done, is dropped, is leased or queued (its queue entry stands
-- for it), and records in the cursor how far it went.
--
-- A claim writes a fresh lease token to the leases hash and queues the inquiry at now +
-- lease: a claim nobody settles becomes due again when the lease runs out, and the next claim
-- takes it over. A queued inquiry whose record is gone is taken out instead. Before claiming,
-- the script purges a few records of the shard whose retention is over (purge in lib.lua),
-- so records go even when no events arrive.
--
-- Returns a flat array, 4 entries per claim: handle, the record as it was before the claim, the
-- lease token, '1' when the claim took over an earlier lease that was never settled ('0'
-- otherwise).

local recs, exp, queue, curkey, leases = KEYS[1], KEYS[2], KEYS[3], KEYS[6], KEYS[8]
local now = tonumber(ARGV[1])
local until_ = int(now + tonumber(ARGV[2]))
local limit = tonumber(ARGV[3])
local tokens = ARGV[4]

purge(recs, exp, queue, KEYS[4], KEYS[5], leases, tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]))

local out, n = {}, 0
local function claim(id, raw)
  n = n + 1
  local token = tokens .. '.' .. n
  local took = redis.call('HSET', leases, id, token) == 0 and '1' or '0'
  redis.call('ZADD', queue, until_, id)
  out[#out + 1] = id
  out[#out + 1] = raw
  out[#out + 1] = token
  out[#out + 1] = took
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', queue, '-inf', int(now), 'LIMIT', 0, limit)) do
  local raw = redis.call('HGET', recs, id)
  if raw then
    claim(id, raw)
  else
    redis.call('ZREM', queue, id)
    redis.call('HDEL', leases, id)
  end
end

-- A shard swept for the first time sweeps every stage from the beginning of the expiry index.
-- A stage added to the configuration later applies to the inquiries whose stage time is still
-- ahead: its sweep starts after those it is already due for (they get their next stage).
local stages = stageList(ARGV[5])
local curs = cursors(curkey)
local first = next(curs) == nil
for _, st in ipairs(stages) do
  if curs[st[1]] == nil then
    if first then
      curs[st[1]] = false
      redis.call('HSET', curkey, st[1], '')
    else
      curs[st[1]] = { now + st[2] + 1, '' }
      redis.call('HSET', curkey, st[1], int(now + st[2] + 1) .. ':')
    end
  end
end
for _, st in ipairs(stages) do
  if n >= limit then break end
  local name, hi = st[1], now + st[2]
  local got = after(exp, curs[name], hi, (limit - n) * 2 + 16)
  local last = nil
  for i = 1, #got, 2 do
    local id = got[i]
    last = int(tonumber(got[i + 1])) .. ':' .. id
    local raw = redis.call('HGET', recs, id)
    local rec = decode(raw)
    if rec and resumable(rec.s) and not rec.rd and not sentSet(rec.rm)[name]
        and not redis.call('ZSCORE', queue, id) then
      claim(id, raw)
      if n >= limit then break end
    end
  end
  if last then
    redis.call('HSET', curkey, name, last)
  end
end
return out
