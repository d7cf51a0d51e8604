-- schedule_claim.lua: find, and claim with a lease, the due reminders of one shard, soonest
-- expiry first (lib.lua is prepended). DESIGN.md decisions 4 and 5.
--
-- KEYS: 1 records hash, 2 expiry zset, 3 reminder queue zset, 4 retention zset,
--       5 status counters, 6 sweep cursors, 7 templates (unused), 8 leases hash
-- ARGV: 1 now (unix ms, the caller's clock: what is due)   2 lease (ms)   3 limit
--       4 lease token prefix (random per call; the claim's position is appended)
--       5 reminder stages "<name>:<before ms>,..." (longest first)
--       6 the store's clock (unix ms)   7 retention (ms)   8 purge budget
--       9 mode: 'peek' (find the candidates and return their expiries; claims nothing) or
--         'claim'
--      10 claim only candidates expiring at or before this (unix ms; '' = any)
--      11 lease clock offset (ms, added to Redis TIME; 0 outside tests)
--
-- Candidates, in three places, each read with a LIMIT so the cost follows the due work:
-- * leases that ran out (the leases hash, handle -> "<token>|<end ms>|<intent stage>", the
--   end on Redis's clock): taken over, keeping the send intent of the earlier holder;
-- * the queue's members scored at or before now, not leased;
-- * each stage's sweep: the expiry index after the stage's cursor up to now + the stage,
--   passing (without claiming) inquiries that have the stage or a later stage done, are
--   dropped, leased or queued (the queue entry stands for them).
-- They are ordered by expires-at (then handle), and the first limit (at most the given
-- expiry) are claimed. A stage's cursor moves up to the first candidate it read that was not
-- claimed, so that one is found again. A claim writes a fresh lease token and the lease's end
-- (Redis TIME + lease) to the leases hash and parks the inquiry in the queue at PARKED, out of
-- reach of ZRANGEBYSCORE ... now: a lease that runs out unsettled is found in the leases hash.
-- The lease's end comes from Redis, never from a replica's clock.
--
-- A shard swept for the first time sweeps every stage from the beginning of the expiry index.
-- A stage new to the shard applies to the inquiries whose stage time is still ahead: its
-- sweep starts after those it is already due for, and its added time (stage epochs in
-- lib.lua) keeps the queue from bringing back the others. A stage no claim has run with for
-- longer than STALE while claims ran with others (it was removed from the configuration and
-- added back) starts afresh the same way, not from its old cursor.
--
-- Returns, in peek mode, the expiries (unix ms) of up to limit candidates, soonest first. In
-- claim mode: Redis's now (ms, with the offset), the leases' end, the stages' added times
-- ("<name>=<ms>,..."; 0: from the start), then 5 entries per claim:
-- handle, the record as it was before the claim, the lease token, '1' when the claim took
-- over a lease that ran out unsettled ('0' otherwise), and the send intent found ('' none).

local recs, exp, queue, curkey, leases = KEYS[1], KEYS[2], KEYS[3], KEYS[6], KEYS[8]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local tokens = ARGV[4]
local peek = ARGV[9] == 'peek'
local maxExp = ARGV[10] ~= '' and tonumber(ARGV[10]) or nil
local t = redis.call('TIME')
local rnow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[11])
local leaseEnd = rnow + tonumber(ARGV[2])

purge(recs, exp, queue, KEYS[4], KEYS[5], leases, tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]))

-- cands: handle -> { x, raw, took, intent }; order: the handles.
local cands, order = {}, {}
local function add(id, raw, rec, took, intent)
  if cands[id] then return end
  cands[id] = { x = (rec and rec.x) or 0, raw = raw, took = took, intent = intent or '' }
  order[#order + 1] = id
end

-- Leases that ran out.
local flat = redis.call('HGETALL', leases)
for i = 1, #flat, 2 do
  local id = flat[i]
  local _, ends, intent = leaseParts(flat[i + 1])
  if ends <= rnow then
    local raw = redis.call('HGET', recs, id)
    if raw then
      add(id, raw, decode(raw), true, intent)
    else
      redis.call('HDEL', leases, id)
      redis.call('ZREM', queue, id)
    end
  end
end

-- The stages: set up those new to the shard (or added back after being removed), and note
-- that a claim ran with them (see stage epochs in lib.lua).
local stages = stageList(ARGV[5])
local curs = cursors(curkey)
local first = next(curs) == nil
local info = stageInfo(redis.call('HGETALL', curkey))
local newest = 0
for _, v in pairs(info) do
  if v[3] > newest then newest = v[3] end
end
local added = {} -- stage name -> added
for _, st in ipairs(stages) do
  local name = st[1]
  local inf = info[name]
  local stale = curs[name] ~= nil and inf ~= nil and inf[3] > 0 and newest - inf[3] > STALE
  added[name] = inf and inf[2] or 0
  if curs[name] == nil or stale then
    if first then
      curs[name] = false
      redis.call('HSET', curkey, name, '')
    else
      curs[name] = { now + st[2] + 1, '' }
      redis.call('HSET', curkey, name, int(now + st[2] + 1) .. ':')
      added[name] = now
    end
  end
  redis.call('HSET', curkey, '~' .. name, int(st[2]) .. '/' .. int(added[name]) .. '/' .. int(rnow))
  info[name] = { st[2], added[name], rnow }
end
local live = liveStages(ARGV[5], info)

-- dueFor reports whether one of the stages in list is due for rec at now: not done (nor a
-- later one), its time come, and at or after the stage was added.
local function dueFor(rec, list)
  for _, st in ipairs(list) do
    local at = rec.x - st[2]
    local from = st[3] or added[st[1]] or 0
    if at <= now and at >= from and not stageDone(rec.rm, st[1], st[2]) then return true end
  end
  return false
end

-- The queue. A queued inquiry that none of this configuration's stages is due for is left to
-- the replicas whose configuration has the stage it waits for; when no live stage is due
-- for it either, it is scheduled anew.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', queue, '-inf', int(now), 'LIMIT', 0, limit * 2 + 16)) do
  if redis.call('HEXISTS', leases, id) == 0 then
    local raw = redis.call('HGET', recs, id)
    local rec = decode(raw)
    if not rec then
      redis.call('ZREM', queue, id)
    elseif not (resumable(rec.s) and rec.x and not rec.rd) or dueFor(rec, stages) then
      add(id, raw, rec, false, '')
    elseif not dueFor(rec, live) then
      schedule(queue, curkey, id, rec, ARGV[5], false)
    end
  end
end

-- The sweeps.
local read = {} -- stage name -> list of { position, handle or false (not a candidate) }
for _, st in ipairs(stages) do
  local name, hi = st[1], now + st[2]
  local got = after(exp, curs[name], hi, limit * 2 + 16)
  local list = {}
  for i = 1, #got, 2 do
    local id = got[i]
    local pos = int(tonumber(got[i + 1])) .. ':' .. id
    local raw = redis.call('HGET', recs, id)
    local rec = decode(raw)
    local ok = rec and resumable(rec.s) and not rec.rd and not stageDone(rec.rm, name, st[2])
        and not redis.call('ZSCORE', queue, id) and redis.call('HEXISTS', leases, id) == 0
    if ok then
      add(id, raw, rec, false, '')
      list[#list + 1] = { pos, id }
    else
      list[#list + 1] = { pos, false }
    end
  end
  read[name] = list
end

table.sort(order, function(a, b)
  local xa, xb = cands[a].x, cands[b].x
  if xa ~= xb then return xa < xb end
  return bytesLess(a, b)
end)

-- advance moves each stage's cursor up to the first candidate it read that is not in taken.
local function advance(taken)
  for name, list in pairs(read) do
    local last = nil
    for _, e in ipairs(list) do
      if e[2] and not taken[e[2]] then break end
      last = e[1]
    end
    if last then
      redis.call('HSET', curkey, name, last)
    end
  end
end

if peek then
  advance({})
  local out = {}
  for i = 1, math.min(limit, #order) do
    out[i] = cands[order[i]].x
  end
  return out
end

local epochs = {}
for _, st in ipairs(stages) do
  epochs[#epochs + 1] = st[1] .. '=' .. int(added[st[1]])
end
local out, taken, n = { int(rnow), int(leaseEnd), table.concat(epochs, ',') }, {}, 0
for _, id in ipairs(order) do
  if n >= limit then break end
  local c = cands[id]
  if maxExp and c.x > maxExp then break end
  n = n + 1
  taken[id] = true
  local token = tokens .. '.' .. n
  redis.call('HSET', leases, id, token .. '|' .. int(leaseEnd) .. '|' .. c.intent)
  redis.call('ZADD', queue, PARKED, id)
  out[#out + 1] = id
  out[#out + 1] = c.raw
  out[#out + 1] = token
  out[#out + 1] = c.took and '1' or '0'
  out[#out + 1] = c.intent
end
advance(taken)
return out
