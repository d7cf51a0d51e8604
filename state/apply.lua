-- apply.lua: apply one Persona event to its inquiry's record, atomically (lib.lua is
-- prepended). Returns the outcome: 'applied', 'duplicate', 'stale' or 'ignored'.
--
-- KEYS: 1 records hash, 2 expiry zset, 3 reminder queue zset, 4 retention zset,
--       5 status counters, 6 sweep cursors, 7 templates hash, 8 leases hash,
--       9 funnel bucket of the day (see funnelCount in lib.lua)
-- ARGV:
--   1 now (unix ms, the store's clock)     2 inquiry handle (field and index member)
--   3 event id digest (6 bytes)            4 event id (as stored, see record.go)
--   5 event name (as stored)               6 event time (unix ms)
--   7 status the event tells ('' = none)   8 'own' when it is the event's own status
--   9 '1' when the event carries an inquiry snapshot
--  10..18 snapshot fields r t a c st ca xa em nf ('' = not carried; t, a packed; the record
--          keeps t as the shard's code for it, see intern in lib.lua)
--  19 expires-at from the payload (unix ms, '' = not carried)
--  20 template interval (ms) for deriving expires-at
--  21 event memory (ms)   22 retention (ms)   23 purge budget   24 event ids remembered at most
--  25 reminder stages "<name>:<before ms>,..." (longest first)
--  26 the rest of the inquiry id (see splitID in pack.go)
--  27 when the funnel bucket expires (unix s)
--  28 '1' to keep e-mail and first name of an expired inquiry (for its win-back message)
--  29 the inquiry template version id from the payload ('' = not carried; kept as the
--     shard's code for it, like the template)
--  30 the inquiry's locale field ('' = not carried), a snapshot field like r
--
-- Rules (DESIGN.md decision 2, PERSONA.md §2, §4, §5):
-- * An event without an inquiry snapshot (about an inquiry session, verification or
--   document) only updates a record that exists (its remembered ids and last event, the
--   inquiry's last activity); it never creates one, and is not remembered then.
-- * Dedup: the record remembers up to ARGV[24] event ids: the 6-byte digest of each and the
--   store time (unix s) it was seen. An id seen within the event memory is a duplicate and
--   changes nothing.
-- * Status: ordered by (event time, rank, status name); the status changes only when the
--   event orders at or after the one that set the current status. Equal times: the higher
--   rank wins (created < pending < unknown < expired < completed < failed < needs_review <
--   declined < approved < redacted), then the larger name, so any order ends the same.
-- * Fields: an event at or after the current status overwrites the fields it carries; an
--   older one (or one without a status) only fills fields still empty.
-- * Expires-at: the value carried by the newest event (in event time) that carried one;
--   events at the same time: the largest value, so any order ends the same. Persona's
--   intervals are per template and independent (PERSONA.md §5), so a newer event may carry an
--   earlier expiry (after-create 7 days, after-start 24 hours). An older event fills it only
--   when none is known. Without any carried value it is derived from the template interval:
--   created -> created-at + interval, otherwise started-at + interval, falling back to
--   created-at, then to the status's event time; any carried value replaces a derived one.
--   The record keeps the carrying event's time ('xt', see lib.lua).
-- * Only created/pending records are in the expiry index and keep e-mail and name. Others
--   are listed in the retention index until now + retention; created/pending ones are purged
--   retention after expires-at.
-- * Reminder schedule (see lib.lua): when a created/pending record becomes created/pending or
--   its expires-at changes, it is queued for its unsent stages whose sweep has passed it
--   (schedule in lib.lua), and a drop ('rd') is forgotten; an inquiry the notifier holds a
--   lease on (in the leases hash) is left alone (the lease holder, or whoever takes the lease
--   over, schedules it from the record). A record that stops being created/pending leaves
--   the queue and loses its reminder bookkeeping ('ra', 'rd') but not its lease: the holder
--   still records the stage it sent; 'rm' stays, so a stage is never sent twice for one
--   expiry. An expired record that becomes created/pending again (resumed) loses 'rm': its
--   stages apply anew to the new expiry.
-- * Funnel (funnel.go): on a reminded record ('fa'), an event at or after the reminder counts
--   each funnel step once per reminder: resumed (inquiry-session.started, inquiry.started,
--   inquiry.transitioned, or any completion), completed (the status moving to completed,
--   needs_review, approved or declined, with the time since the reminder), then the outcome
--   (needs_review, approved, declined, failed, expired). A final status drops 'fa'. The
--   reply is then { outcome, attribution, steps (comma separated), ms since the reminder or
--   -1 }.

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
  if s1 ~= s2 then return bytesLess(s1, s2) and -1 or 1 end
  return 0
end

local recs, exp, queue, ret, counts, curkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local leases = KEYS[8]
local now = tonumber(ARGV[1])
local id = ARGV[2]
local retention = tonumber(ARGV[22])

purge(recs, exp, queue, ret, counts, leases, now, retention, tonumber(ARGV[23]))

local cur = load(recs, id)
local isNew = cur == nil
if isNew and ARGV[9] ~= '1' then
  -- An event about a part of the inquiry (a session, a verification, a document) tells no
  -- status: it never creates a record (PERSONA.md §4).
  return 'ignored'
end
cur = cur or { id = ARGV[26] }
if cur.id ~= ARGV[26] then
  return redis.error_reply('inquiry handle taken by another inquiry')
end

-- Dedup.
local dig = ARGV[3]
local horizon = now - tonumber(ARGV[21])
local kept = {}
for _, e in ipairs(cur.e or {}) do
  if e[2] * 1000 >= horizon then
    if e[1] == dig then
      return 'duplicate'
    end
    kept[#kept + 1] = e
  end
end
kept[#kept + 1] = { dig, math.floor(now / 1000) }
local maxIDs = tonumber(ARGV[24])
while #kept > maxIDs do
  table.remove(kept, 1)
end

-- rec is the new record: a copy of the current one, changed below.
local rec = {}
for k, v in pairs(cur) do
  rec[k] = v
end
rec.e = kept
local changed = isNew

-- Status.
local evt = tonumber(ARGV[6])
local cand, own = ARGV[7], ARGV[8] == 'own'
local old, oldAt = cur.s, cur.sa
local status, statusAt = old, oldAt
local current, stale = false, false
if cand ~= '' then
  if old == nil or order(evt, cand, oldAt, old) >= 0 then
    current = true
    if cand ~= old then
      status = cand
      rec.s = cand
      changed = true
    end
    if statusAt == nil or evt > statusAt then
      statusAt = evt
      rec.sa = evt
    end
  else
    stale = true
  end
end
local open = resumable(status)
-- keepContact: e-mail and name stay while the inquiry can still be reminded (created/pending,
-- or expired when win-back messages are on; winback.lua deletes them once it is done).
local keepContact = open or (status == 'expired' and ARGV[28] == '1')

-- Fields (times are numbers).
local view = {}
local fields = {
  { 'r' }, { 't' }, { 'a' }, { 'c', true }, { 'st', true }, { 'ca', true }, { 'xa', true },
  { 'em' }, { 'nf' }, { 'lc' },
}
for i, f in ipairs(fields) do
  local name = f[1]
  local v = ARGV[name == 'lc' and 30 or 9 + i]
  view[name] = cur[name]
  if v ~= '' then
    if f[2] then
      v = tonumber(v)
    elseif name == 't' then
      v = intern(KEYS[7], v)
    end
    if v ~= cur[name] and (current or cur[name] == nil) then
      view[name] = v
      if keepContact or (name ~= 'em' and name ~= 'nf') then
        rec[name] = v
        changed = true
      end
    end
  end
end
if not keepContact then
  rec.em, rec.nf = nil, nil
end
if ARGV[29] ~= '' then
  local tv = intern(KEYS[7], ARGV[29])
  if tv ~= cur.tv and (current or cur.tv == nil) then
    rec.tv = tv
    changed = true
  end
end

-- Expires-at.
local x, derived, xt = cur.x, cur.xd == true, cur.xt
local nx, nderived, nxt = x, derived, xt
local xp = ARGV[19]
if xp ~= '' then
  xp = tonumber(xp)
  if x == nil or derived or xt == nil or evt > xt or (evt == xt and xp > x) then
    nx, nderived, nxt = xp, false, evt
  end
elseif (ARGV[9] == '1' or x == nil) and (x == nil or derived) then
  local base
  if status == 'created' then
    base = view.c or statusAt
  else
    base = view.st or view.c or statusAt
  end
  if base then
    nx, nderived, nxt = base + tonumber(ARGV[20]), true, nil
  end
end
if nx ~= x then
  rec.x = nx
  changed = true
end
rec.xd, rec.xt = nderived or nil, nxt

-- Last event.
local lastAt = cur.lt
if lastAt == nil or evt > lastAt or (evt == lastAt and bytesLess(cur.le or '', ARGV[4])) then
  rec.le, rec.ln, rec.lt = ARGV[4], ARGV[5], evt
end
if changed then
  rec.u = now
end

-- Funnel.
local fsteps
local fa = cur.fa
if fa and evt >= fa[2] then
  local fl, steps, elapsed = fa[3], {}, -1
  local function step(flag, name)
    if flag == 0 or bit.band(fl, flag) == 0 then
      fl = bit.bor(fl, flag)
      steps[#steps + 1] = name
    end
  end
  local name = ARGV[5]
  -- inquiry.started, inquiry.transitioned, inquiry-session.started (eventNames in pack.go)
  if name == '\2' or name == '\10' or name == '\11' then
    step(FUNNEL_RESUMED, 'resumed')
  end
  local final = false
  if status ~= old then
    if status == 'completed' or status == 'needs_review' or status == 'approved' or status == 'declined' then
      step(FUNNEL_RESUMED, 'resumed')
      if bit.band(fl, FUNNEL_COMPLETED) == 0 then
        elapsed = evt - fa[2]
      end
      step(FUNNEL_COMPLETED, 'completed')
    end
    if status == 'needs_review' then
      step(FUNNEL_REVIEW, 'needs_review')
    elseif status == 'approved' or status == 'declined' or status == 'failed' or status == 'expired' then
      step(0, status)
    end
    final = not resumable(status) and status ~= 'completed' and status ~= 'needs_review'
  end
  if #steps > 0 then
    local bucket, at, code = KEYS[9], ARGV[27], fa[1]
    for _, st in ipairs(steps) do
      funnelCount(bucket, at, code, st)
    end
    if elapsed >= 0 then
      funnelElapsed(bucket, at, code, elapsed)
    end
    fsteps = { funnelDims(KEYS[7], code), table.concat(steps, ','), elapsed }
  end
  if final then
    rec.fa = nil
  elseif fl ~= fa[3] then
    rec.fa = { fa[1], fa[2], fl }
  end
elseif fa and not resumable(status) and status ~= 'completed' and status ~= 'needs_review' then
  rec.fa = nil
end

-- Counters and indexes.
if status ~= old then
  if old then decr(counts, old) end
  redis.call('HINCRBY', counts, status, 1)
end
if open and nx then
  redis.call('ZADD', exp, int(nx), id)
  if old == 'expired' then
    -- Revived: a resume made the expired inquiry pending again with a new expiry
    -- (PERSONA.md §6), so its reminder stages start over for that expiry.
    rec.rm = nil
  end
  if (nx ~= x or not resumable(old)) and redis.call('HEXISTS', leases, id) == 0 then
    rec.rd = nil
    schedule(queue, curkey, id, rec, ARGV[25], isNew)
  end
  if not isNew and (not resumable(old) or x == nil) then
    redis.call('ZREM', ret, id)
  end
else
  if resumable(old) then
    -- A lease stays (its holder settles it, recording what it sent; schedule_claim.lua
    -- finds it when it runs out).
    redis.call('ZREM', exp, id)
    redis.call('ZREM', queue, id)
    rec.ra, rec.rd = nil, nil
  end
  if isNew or status ~= old then
    redis.call('ZADD', ret, int(now + retention), id)
  end
end
store(recs, id, rec)

local outcome = 'ignored'
if stale and own then
  outcome = 'stale'
elseif changed then
  outcome = 'applied'
end
if fsteps then
  return { outcome, fsteps[1], fsteps[2], fsteps[3] }
end
return outcome
