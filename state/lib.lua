-- lib.lua is prepended to every script of the package (apply.lua, purge.lua and the reminder
-- schedule scripts): the record codec and the helpers they share. Every key a script touches
-- is one of its KEYS, all under one shard's hash tag (one Redis Cluster slot).

-- int formats a number as a decimal integer (no exponent), for values stored as text.
local function int(x)
  return string.format('%d', x)
end

-- resumable: only created and pending inquiries can be resumed, so only they are in the
-- expiry index and the reminder schedule.
local function resumable(s)
  return s == 'created' or s == 'pending'
end

-- bytesLess reports whether a sorts before b byte by byte, the order of members with equal
-- scores in a sorted set. (Lua's own < follows the server's locale.) Members are inquiry
-- handles (see splitID in pack.go): 12 binary bytes.
local function bytesLess(a, b)
  if a == b then return false end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- Record codec (record.go decodes the same format). A record is two MessagePack values, as
-- cmsgpack packs them: the rest of the inquiry's id (see splitID in pack.go; 'id' in the
-- decoded table), then an array of the record's fields in this order, false for one that is
-- absent (absent fields at the end are left out):
--   1 lt  event time (unix ms) of the newest event, as 6 bytes big endian: the base of the
--         other times, which are stored as their difference to it (a few bytes each)
--   2 s   status: 1..9 for those of STATUSES, else the status itself
--   3 sa  4 r   5 t (template code)   6 a   7 c   8 st   9 x   10 le   11 ln   12 em   13 nf
--  14 u
--  15 e   remembered event ids: { their 6-byte digests concatenated, then for each the second
--         it was seen minus u's second }
--  16 ca  17 xa  18 xd: true when x was derived from the template interval; otherwise
--         the event time of the event that carried x ('xt' in the decoded table) as its
--         difference to lt, left out (false) when it is sa, the common case (the events
--         that carry an inquiry carry its status and its expiry)
--  19 rm  20 ra  21 rd
--  22 fa  funnel attribution of the last reminder (see funnel.go): its attribution code (in
--         the templates hash, see funnelCode), its store time and the funnel flags (FUNNEL_*
--         below), packed by packFunnel; only from a reminder until the inquiry is final
--  23 tv  the inquiry template version (the shard's code for it, like t), when Persona said
--         it
--  24 lc  the inquiry's locale field (RESUMER_LOCALE_FIELD), when configured and carried
-- The common fields come first, so that a fresh record's array has at most 15 entries (a
-- one-byte MessagePack header).
local sub, floor = string.sub, math.floor
local STATUSES = {
  'created', 'pending', 'expired', 'completed', 'failed', 'needs_review', 'declined',
  'approved', 'redacted',
}
local statusCode = {}
for i, s in ipairs(STATUSES) do statusCode[s] = i end

-- packFunnel packs a record's funnel attribution fa = { code, reminder time (unix ms),
-- flags } for storing: one integer below 2^32 (5 bytes) when the code is below 256 and the
-- reminder within about 3 days of base, its time then kept in whole seconds:
-- ((zigzag(seconds from base) * 32) + flags) * 256 + code; else { code, ms from base, flags }.
local function packFunnel(fa, base)
  local dt = floor((fa[2] - base) / 1000)
  local zz = dt >= 0 and 2 * dt or -2 * dt - 1
  local v = (zz * 32 + fa[3]) * 256 + fa[1]
  if fa[1] < 256 and fa[3] < 32 and v < 4294967296 then
    return v
  end
  return { fa[1], fa[2] - base, fa[3] }
end

-- unpackFunnel is packFunnel's inverse (to the second).
local function unpackFunnel(v, base)
  if type(v) == 'table' then
    return { v[1], base + v[2], v[3] }
  end
  local code = v % 256
  v = (v - code) / 256
  local flags = v % 32
  local zz = (v - flags) / 32
  local dt = zz % 2 == 0 and zz / 2 or -(zz + 1) / 2
  return { code, base + dt * 1000, flags }
end

-- decode turns a stored record into a table of its fields (times and ints as numbers, the
-- events as a list of { digest, second }), or returns nil for nil.
local function decode(b)
  if not b then return nil end
  local rest, f = cmsgpack.unpack(b)
  local base = struct.unpack('>i6', f[1])
  local s, sa, c, st, x, u, ca, xa = f[2], f[3], f[7], f[8], f[9], f[14], f[16], f[17]
  local rec = {
    id = rest, lt = base, s = s and (STATUSES[s] or s) or nil, sa = sa and base + sa or nil,
    r = f[4] or nil, t = f[5] or nil, a = f[6] or nil, c = c and base + c or nil,
    st = st and base + st or nil, x = x and base + x or nil, le = f[10] or nil, ln = f[11] or nil,
    em = f[12] or nil, nf = f[13] or nil, u = u and base + u or nil, e = nil,
  }
  local xs = false
  if #f > 15 then
    rec.ca, rec.xa, xs = ca and base + ca or nil, xa and base + xa or nil, f[18] or false
    rec.rm, rec.ra, rec.rd = f[19] or nil, f[20] or nil, f[21] or nil
    rec.lc = f[24] or nil
    if f[22] then
      rec.fa = unpackFunnel(f[22], base)
    end
    rec.tv = f[23] or nil
  end
  if xs == true then
    rec.xd = true
  elseif rec.x then
    -- Records written before 'xt' existed kept the largest expires-at: taken as carried by
    -- the event that set the status (or the newest event, without a status).
    rec.xt = xs and base + xs or rec.sa or base
  end
  local e = f[15]
  if e then
    local list, secs, digests = {}, floor((rec.u or 0) / 1000), e[1]
    for j = 2, #e do
      list[j - 1] = { sub(digests, 6 * j - 11, 6 * j - 6), secs + e[j] }
    end
    rec.e = list
  end
  return rec
end

-- encode is decode's inverse. Empty event lists are left out; an empty string is stored as
-- one (callers leave empty fields nil).
local function encode(rec)
  local base = rec.lt or 0
  local e = false
  if rec.e and #rec.e > 0 then
    local digests, secs = {}, floor((rec.u or 0) / 1000)
    e = { false }
    for j, x in ipairs(rec.e) do
      digests[j] = x[1]
      e[j + 1] = x[2] - secs
    end
    e[1] = table.concat(digests)
  end
  local s, sa, c, st, x, u, ca, xa = rec.s, rec.sa, rec.c, rec.st, rec.x, rec.u, rec.ca, rec.xa
  local xs = false
  if rec.xd then
    xs = true
  elseif x and rec.xt and rec.xt ~= sa then
    xs = rec.xt - base
  end
  local f = {
    struct.pack('>i6', base), s and (statusCode[s] or s) or false, sa and sa - base or false,
    rec.r or false, rec.t or false, rec.a or false, c and c - base or false,
    st and st - base or false, x and x - base or false, rec.le or false, rec.ln or false,
    rec.em or false, rec.nf or false, u and u - base or false, e, ca and ca - base or false,
    xa and xa - base or false, xs, rec.rm or false, rec.ra or false, rec.rd or false,
    rec.fa and packFunnel(rec.fa, base) or false, rec.tv or false, rec.lc or false,
  }
  local n = 24
  while n > 2 and f[n] == false do
    f[n] = nil
    n = n - 1
  end
  return cmsgpack.pack(rec.id, f)
end

-- intern returns the shard's code for template id t, assigning the next one when t has none.
-- The templates hash maps '=' .. template -> code and '#' .. code -> template; codes are
-- never reused, so a record's 't' (a code) always names the same template.
local function intern(templates, t)
  local code = redis.call('HGET', templates, '=' .. t)
  if code then return tonumber(code) end
  code = redis.call('HLEN', templates) / 2 + 1
  redis.call('HSET', templates, '=' .. t, int(code), '#' .. int(code), t)
  return code
end

-- load returns the decoded record of the inquiry with handle id, or nil when there is none.
local function load(recs, id)
  local b = redis.call('HGET', recs, id)
  if not b then return nil end
  return decode(b)
end

-- store writes rec as inquiry id's record.
local function store(recs, id, rec)
  redis.call('HSET', recs, id, encode(rec))
end

-- sentSet returns the record's reminder list ('rm', comma separated) as a set.
local function sentSet(rm)
  local sent = {}
  for e in string.gmatch(rm or '', '[^,]+') do
    sent[e] = true
  end
  return sent
end

-- Reminder schedule. A created/pending inquiry's stage is due at its expires-at minus the
-- stage's time before it. Stages are found in two ways:
-- * The sweep of each stage walks the expiry index in (score, member) order up to now plus
--   the stage, and remembers in the cursors hash how far it went: stage name -> "<score>:
--   <member>". An inquiry whose (expires-at, id) the stage's cursor has not passed yet is due
--   for that stage when the sweep reaches it (unless it is done by then).
-- * The queue (a sorted set) holds the inquiries whose next reminder cannot be left to a
--   sweep: claimed ones at their lease's end, released ones at their retry time, and those
--   with an unsent stage whose cursor has already passed them, at that stage's due time.
--   The leases hash holds the lease token of each claimed one (handle -> token); a leased
--   inquiry is always queued.

-- PARKED is the queue score of a leased inquiry: beyond any due time, so that only the
-- leases hash (by the lease's end on Redis's clock) brings it back when its lease runs out.
local PARKED = '9000000000000000'

-- leaseParts splits a leases hash value "<token>|<end ms>|<intent stage>" into the token,
-- the lease's end (a number; 0 for a value without one, which has run out) and the stage
-- whose send intent the holder recorded ('' none).
local function leaseParts(v)
  local token, ends, intent = string.match(v or '', '^([^|]*)|(%d+)|(.*)$')
  if not token then return v or '', 0, '' end
  return token, tonumber(ends), intent
end

-- stageMs returns the time before expiry of the stage named name ("6h", "90m", "45s"), or nil
-- for another name (a channel mark).
local function stageMs(name)
  local n, unit = string.match(name, '^(%d+)([hms])$')
  if not n then return nil end
  local mult = unit == 'h' and 3600000 or unit == 'm' and 60000 or 1000
  return tonumber(n) * mult
end

-- stageDone reports whether the stage name (before ms before expiry) needs nothing more: it
-- is in the reminder list rm, or a later stage (closer to expiry) is, so sending it now would
-- come after that one.
local function stageDone(rm, name, before)
  for e in string.gmatch(rm or '', '[^,]+') do
    if e == name then return true end
    local ms = stageMs(e)
    if ms and ms < before then return true end
  end
  return false
end

-- cursors returns the shard's sweep cursors: stage name -> { score, member }, or false for a
-- sweep that starts from the beginning (stored as ''). A stage without a cursor has not been
-- swept yet (see schedule_claim.lua).
local function cursors(key)
  local flat = redis.call('HGETALL', key)
  local out = {}
  for i = 1, #flat, 2 do
    local v = flat[i + 1]
    local colon = string.find(v, ':', 1, true)
    out[flat[i]] = colon ~= nil and { tonumber(string.sub(v, 1, colon - 1)), string.sub(v, colon + 1) }
  end
  return out
end

-- passed reports whether a sweep whose cursor is c has gone past (x, id).
local function passed(c, x, id)
  if not c then return false end
  return x < c[1] or (x == c[1] and not bytesLess(c[2], id))
end

-- stageList parses the stages argument "<name>:<before ms>,..." (longest first).
local function stageList(stages)
  local out = {}
  for name, before in string.gmatch(stages, '([^:,]+):(%d+)') do
    out[#out + 1] = { name, tonumber(before) }
  end
  return out
end

-- Stage epochs. Next to each stage's cursor the cursors hash keeps a field "~<name>" =
-- "<before ms>/<added>/<seen>": the stage's time before expiry, when it was added (unix ms on
-- the claimers' clock; 0 when it has applied from the start) and when a claim last ran with
-- it in its configuration (Redis TIME). A stage applies to an inquiry only when its due time
-- is at or after its added time. (An older "~<name>" value is just <seen>.)

-- STALE: a stage no claim has run with for this long, while claims ran with others, has been
-- removed from every replica's configuration; added back, it starts afresh.
local STALE = 3600000

-- stageInfo returns the stage epochs among the cursors hash's fields (flat, as HGETALL
-- returns them): name -> { before ms, added, seen }.
local function stageInfo(flat)
  local out = {}
  for i = 1, #flat, 2 do
    local k = flat[i]
    if string.sub(k, 1, 1) == '~' then
      local name = string.sub(k, 2)
      local b, a, seen = string.match(flat[i + 1], '^(%d+)/(%d+)/(%d+)$')
      if b then
        out[name] = { tonumber(b), tonumber(a), tonumber(seen) }
      else
        out[name] = { stageMs(name) or 0, 0, tonumber(flat[i + 1]) or 0 }
      end
    end
  end
  return out
end

-- liveStages returns the stages of the caller's configuration (stageList(stages)) and the
-- other stages some claim ran with within STALE of the latest claim (another replica's
-- configuration, say during a rolling deploy), each { name, before ms, added }, longest
-- first. Scheduling by all of them keeps one replica from erasing another's stages.
local function liveStages(stages, info)
  local list, have, newest = {}, {}, 0
  for _, v in pairs(info) do
    if v[3] > newest then newest = v[3] end
  end
  for _, st in ipairs(stageList(stages)) do
    local inf = info[st[1]]
    list[#list + 1] = { st[1], st[2], inf and inf[2] or 0 }
    have[st[1]] = true
  end
  for name, v in pairs(info) do
    if not have[name] and v[1] > 0 and newest - v[3] <= STALE then
      list[#list + 1] = { name, v[1], v[2] }
    end
  end
  table.sort(list, function(a, b) return a[2] > b[2] end)
  return list
end

-- schedule puts inquiry id into the queue at the earliest due time among its unsent stages
-- whose cursor has passed it, or takes it out when there is none (the sweeps will find its
-- other unsent stages). rec is its record; an inquiry that is not created/pending, has no
-- expires-at or whose reminders were dropped is taken out. fresh says it is not queued.
local function schedule(queue, curkey, id, rec, stages, fresh)
  local best
  if resumable(rec.s) and rec.x and not rec.rd then
    local x = rec.x
    -- Most often no cursor has reached x yet: find that out without parsing much.
    local flat, reached = redis.call('HGETALL', curkey), false
    for i = 2, #flat, 2 do
      local v = flat[i]
      local colon = string.find(v, ':', 1, true)
      if colon ~= nil and tonumber(string.sub(v, 1, colon - 1)) >= x then
        reached = true
        break
      end
    end
    if reached then
      local curs = cursors(curkey)
      for _, st in ipairs(liveStages(stages, stageInfo(flat))) do
        local at = x - st[2]
        if at >= st[3] and not stageDone(rec.rm, st[1], st[2]) and passed(curs[st[1]], x, id) then
          if best == nil or at < best then best = at end
        end
      end
    end
  end
  if best then
    redis.call('ZADD', queue, int(best), id)
  elseif not fresh then
    redis.call('ZREM', queue, id)
  end
end

-- position returns how many members of the sorted set x sort at or before cursor c.
local function position(x, c)
  if not c then return 0 end
  local sc = redis.call('ZSCORE', x, c[2])
  if sc and tonumber(sc) == c[1] then
    return redis.call('ZRANK', x, c[2]) + 1
  end
  -- The cursor's member moved or left: count the members at its score that sort before it.
  local n = redis.call('ZCOUNT', x, '-inf', '(' .. int(c[1]))
  local off = 0
  while true do
    local got = redis.call('ZRANGEBYSCORE', x, int(c[1]), int(c[1]), 'LIMIT', off, 100)
    for _, m in ipairs(got) do
      if bytesLess(c[2], m) then return n end
      n = n + 1
    end
    if #got < 100 then return n end
    off = off + 100
  end
end

-- after returns up to n members of x after cursor c (from the start when nil) whose score is
-- at most hi, as a flat list member, score, member, score ...
local function after(x, c, hi, n)
  if c and c[1] > hi then return {} end
  local from = position(x, c)
  local to = math.min(from + n, redis.call('ZCOUNT', x, '-inf', int(hi)))
  if to <= from then return {} end
  return redis.call('ZRANGE', x, from, to - 1, 'WITHSCORES')
end

-- decr takes one from a status counter, removing the field when it reaches zero.
local function decr(counts, status)
  if redis.call('HINCRBY', counts, status, -1) <= 0 then
    redis.call('HDEL', counts, status)
  end
end

-- purge deletes up to budget records of the shard whose retention is over: final records
-- whose retention deadline (score in ret) has passed, then created/pending records whose
-- expires-at (score in exp) is more than retention ago. It keeps the status counters in step
-- and returns how many records it deleted.
local function purge(recs, exp, queue, ret, counts, leases, now, retention, budget)
  local n = 0
  local function drop(id)
    local rec = load(recs, id)
    if rec and rec.s then decr(counts, rec.s) end
    redis.call('HDEL', recs, id)
    n = n + 1
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', ret, '-inf', int(now), 'LIMIT', 0, budget)) do
    drop(id)
    redis.call('ZREM', ret, id)
  end
  if n < budget then
    local ids = redis.call('ZRANGEBYSCORE', exp, '-inf', int(now - retention), 'LIMIT', 0, budget - n)
    for _, id in ipairs(ids) do
      drop(id)
      redis.call('ZREM', exp, id)
      redis.call('ZREM', queue, id)
      redis.call('HDEL', leases, id)
    end
  end
  return n
end

-- Funnel (funnel.go). A reminder (or a held-out one) gives its inquiry's record 'fa': the
-- code of its attribution ("group|stage|channel|link mode|brand", interned in the templates
-- hash under a 0x01 byte so it never meets a template id), its store time and flags saying
-- which funnel steps this reminder has already counted. A record that has 'fa' was counted
-- as a reminded inquiry already. Counts go to the shard's funnel bucket
-- of the day (KEYS of each script): field "<code>:<step>", and "<code>:h<i>" for the
-- histogram of the time from reminder to completion.
local FUNNEL_OPENED, FUNNEL_PRESSED, FUNNEL_RESUMED, FUNNEL_COMPLETED = 1, 2, 4, 8
local FUNNEL_REVIEW = 16

-- FUNNEL_BOUNDS are the histogram's upper bounds in seconds (funnelBounds in funnel.go);
-- an elapsed time above the last is counted in bucket #FUNNEL_BOUNDS + 1.
local FUNNEL_BOUNDS = { 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800, 604800 }

-- funnelCode returns the shard's code for attribution dims.
local function funnelCode(templates, dims)
  return intern(templates, '\1' .. dims)
end

-- funnelDims returns the attribution of code (what funnelCode interned).
local function funnelDims(templates, code)
  local d = redis.call('HGET', templates, '#' .. int(code)) or ''
  return string.sub(d, 2)
end

-- funnelCount adds one to step of attribution code in bucket, which expires at expireAt
-- (unix s).
local function funnelCount(bucket, expireAt, code, step)
  redis.call('HINCRBY', bucket, int(code) .. ':' .. step, 1)
  redis.call('EXPIREAT', bucket, expireAt)
end

-- funnelElapsed counts the time from reminder to completion, ms milliseconds, in the
-- histogram of code.
local function funnelElapsed(bucket, expireAt, code, ms)
  local i = 1
  while i <= #FUNNEL_BOUNDS and ms > FUNNEL_BOUNDS[i] * 1000 do
    i = i + 1
  end
  funnelCount(bucket, expireAt, code, 'h' .. i)
end
