-- apply.lua: apply one Persona event to its inquiry's record, atomically (lib.lua is
-- prepended). Returns the outcome: 'applied', 'duplicate', 'stale' or 'ignored'.
--
-- KEYS: 1 record hash, 2 expiry zset, 3 due zset, 4 retention zset, 5 status counters
-- ARGV:
--   1 now (unix ms, the store's clock)     2 inquiry id (index member)
--   3 event id digest (6 bytes)            4 event id
--   5 event name                           6 event time (unix ms)
--   7 status the event tells ('' = none)   8 'own' when it is the event's own status
--   9 '1' when the event carries an inquiry snapshot
--  10..18 snapshot fields r t a c st ca xa em nf ('' = not carried)
--  19 expires-at from the payload (unix ms, '' = not carried)
--  20 template interval (ms) for deriving expires-at
--  21 event memory (ms)   22 retention (ms)   23 TTL grace (ms)
--  24 record key prefix of the shard   25 purge budget   26 event ids remembered at most
--  27 reminder stages "<name>:<before ms>,..." (see nextDue in lib.lua)
--
-- Rules (DESIGN.md decision 2, PERSONA.md §2, §4, §5):
-- * Dedup: the record field 'e' holds up to ARGV[26] entries of 10 bytes: 6 bytes of the
--   event id's digest and 4 bytes of the store time (unix s, big endian) it was seen. An id
--   seen within the event memory is a duplicate and changes nothing.
-- * Status: ordered by (event time, rank, status name); the status changes only when the
--   event orders at or after the one that set the current status. Equal times: the higher
--   rank wins (created < pending < unknown < expired < completed < failed < needs_review <
--   declined < approved < redacted), then the larger name, so any order ends the same.
-- * Fields: an event at or after the current status overwrites the fields it carries; an
--   older one (or one without a status) only fills fields still empty.
-- * Expires-at: the largest expires-at any event carried; without one, derived from the
--   template interval: created -> created-at + interval, otherwise started-at + interval,
--   falling back to created-at, then to the status's event time.
-- * Only created/pending records are in exp (and due) and keep e-mail and name. Others are
--   listed in ret until now + retention; created/pending ones are purged retention after
--   expires-at. The TTL is the purge deadline plus the grace.
-- * Reminder schedule (due): a created/pending record with an expires-at is scheduled at its
--   next unsent stage (expires-at - stage, stages not in 'rm') when it becomes created/pending
--   or its expires-at changes; a record the notifier holds a lease on ('ls') is left alone
--   (the lease holder, or whoever takes the lease over, schedules it from the record). A
--   record that stops being created/pending leaves due and loses its lease and reminder
--   bookkeeping ('ls', 'ra', 'rd'); 'rm' stays, so a stage is never sent twice.

local rank = {
  created = 1, pending = 2, expired = 4, completed = 5, failed = 6,
  needs_review = 7, declined = 8, approved = 9, redacted = 10,
}
local function rankOf(s)
  return rank[s] or 3
end

-- order compares (t1, s1) with (t2, s2): -1 before, 0 same, 1 after.
local function order(t1, s1, t2, s2)
  if t1 ~= t2 then return t1 < t2 and -1 or 1 end
  local r1, r2 = rankOf(s1), rankOf(s2)
  if r1 ~= r2 then return r1 < r2 and -1 or 1 end
  if s1 ~= s2 then return s1 < s2 and -1 or 1 end
  return 0
end

local rec, exp, due, ret, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = tonumber(ARGV[1])
local id = ARGV[2]
local retention = tonumber(ARGV[22])
local grace = tonumber(ARGV[23])

purge(ARGV[24], exp, due, ret, counts, now, retention, tonumber(ARGV[25]))

local flat = redis.call('HGETALL', rec)
local cur = {}
for i = 1, #flat, 2 do
  cur[flat[i]] = flat[i + 1]
end
local isNew = #flat == 0

-- Dedup.
local dig = ARGV[3]
local horizon = now - tonumber(ARGV[21])
local seen = cur.e or ''
local kept = {}
for i = 1, #seen - 9, 10 do
  local at = struct.unpack('>I4', seen, i + 6) * 1000
  if at >= horizon then
    if string.sub(seen, i, i + 5) == dig then
      return 'duplicate'
    end
    kept[#kept + 1] = string.sub(seen, i, i + 9)
  end
end
kept[#kept + 1] = dig .. struct.pack('>I4', math.floor(now / 1000))
local maxIDs = tonumber(ARGV[26])
while #kept > maxIDs do
  table.remove(kept, 1)
end

local set = { e = table.concat(kept) }
local del = {}
local changed = isNew

-- Status.
local evt = tonumber(ARGV[6])
local cand, own = ARGV[7], ARGV[8] == 'own'
local old, oldAt = cur.s, tonumber(cur.sa or '')
local status, statusAt = old, oldAt
local current, stale = false, false
if cand ~= '' then
  if old == nil or order(evt, cand, oldAt, old) >= 0 then
    current = true
    if cand ~= old then
      status = cand
      set.s = cand
      changed = true
    end
    if statusAt == nil or evt > statusAt then
      statusAt = evt
      set.sa = ARGV[6]
    end
  else
    stale = true
  end
end
local open = resumable(status)

-- Fields.
local view = {}
local names = { 'r', 't', 'a', 'c', 'st', 'ca', 'xa', 'em', 'nf' }
for i, f in ipairs(names) do
  local v = ARGV[9 + i]
  view[f] = cur[f]
  if v ~= '' and v ~= cur[f] and (current or cur[f] == nil) then
    view[f] = v
    if open or (f ~= 'em' and f ~= 'nf') then
      set[f] = v
      changed = true
    end
  end
end
if not open then
  for _, f in ipairs({ 'em', 'nf' }) do
    if cur[f] then del[#del + 1] = f end
  end
end

-- Expires-at.
local x, derived = cur.x, cur.xd == '1'
local nx, nderived = x, derived
local xp = ARGV[19]
if xp ~= '' then
  if x == nil or derived or tonumber(xp) > tonumber(x) then
    nx, nderived = xp, false
  end
elseif (ARGV[9] == '1' or x == nil) and (x == nil or derived) then
  local base
  if status == 'created' then
    base = view.c or statusAt
  else
    base = view.st or view.c or statusAt
  end
  if base then
    nx, nderived = int(tonumber(base) + tonumber(ARGV[20])), true
  end
end
if nx ~= x then
  set.x = nx
  changed = true
end
if nderived ~= derived then
  if nderived then set.xd = '1' else del[#del + 1] = 'xd' end
end

-- Last event.
local lastAt = tonumber(cur.lt or '')
if lastAt == nil or evt > lastAt or (evt == lastAt and ARGV[4] > (cur.le or '')) then
  set.le, set.ln, set.lt = ARGV[4], ARGV[5], ARGV[6]
end
if changed then
  set.u = int(now)
end

-- Write.
local args = {}
for f, v in pairs(set) do
  args[#args + 1] = f
  args[#args + 1] = v
end
redis.call('HSET', rec, unpack(args))
if #del > 0 then
  redis.call('HDEL', rec, unpack(del))
end

-- Counters and indexes.
if status ~= old then
  if old then decr(counts, old) end
  redis.call('HINCRBY', counts, status, 1)
end
local ttl
if open then
  if nx then
    redis.call('ZADD', exp, nx, id)
    ttl = math.max(tonumber(nx) + retention - now, 0)
    if (nx ~= x or not resumable(old)) and not cur.ls then
      schedule(due, id, status, nx, cur.rm, ARGV[27])
      if cur.rd then redis.call('HDEL', rec, 'rd') end
    end
  else
    ttl = retention
  end
  if not isNew and not resumable(old) then
    redis.call('ZREM', ret, id)
  end
else
  if resumable(old) then
    redis.call('ZREM', exp, id)
    redis.call('ZREM', due, id)
    if cur.ls or cur.ra or cur.rd then
      redis.call('HDEL', rec, 'ls', 'ra', 'rd')
    end
  end
  if isNew or status ~= old then
    redis.call('ZADD', ret, int(now + retention), id)
    ttl = retention
  end
end
if ttl then
  redis.call('PEXPIRE', rec, int(ttl + grace))
end

if stale and own then
  return 'stale'
end
if changed then
  return 'applied'
end
return 'ignored'
