-- lib.lua is prepended to every script of the package (apply.lua, purge.lua and the reminder
-- schedule scripts): helpers they share.
--
-- Record keys of the shard are built here from the record key prefix the caller passes
-- ("<prefix>:{<shard>}:i:"): they carry the same hash tag as the KEYS, so they are in the
-- same Redis Cluster slot as everything else the script touches.

-- int formats a number as a decimal integer (no exponent), for values stored as text.
local function int(x)
  return string.format('%d', x)
end

-- resumable: only created and pending inquiries can be resumed, so only they are in the
-- expiry index and the reminder schedule.
local function resumable(s)
  return s == 'created' or s == 'pending'
end

-- nextDue returns when the next reminder of an inquiry expiring at x (unix ms) is due: the
-- smallest x - before over the stages not listed in rm (the record's comma separated 'rm'
-- field), or nil when every stage is listed. stages is "<name>:<before ms>,..." (the Go
-- side's Config.RemindBefore). Entries of rm with an '@' (a channel finished with a stage)
-- never match a stage name.
local function nextDue(x, rm, stages)
  local sent = {}
  for e in string.gmatch(rm or '', '[^,]+') do
    sent[e] = true
  end
  local best
  for name, before in string.gmatch(stages, '([^:,]+):(%d+)') do
    if not sent[name] then
      local at = x - tonumber(before)
      if best == nil or at < best then best = at end
    end
  end
  return best
end

-- schedule puts inquiry id into the reminder schedule due at its next unsent stage, or takes
-- it out when it is not created/pending, has no expiry or has been sent every stage.
local function schedule(due, id, status, x, rm, stages)
  if resumable(status) and x then
    local at = nextDue(tonumber(x), rm, stages)
    if at then
      redis.call('ZADD', due, int(at), id)
      return at
    end
  end
  redis.call('ZREM', due, id)
  return nil
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
-- and returns how many index entries it removed.
local function purge(recprefix, exp, due, ret, counts, now, retention, budget)
  local n = 0
  local function drop(id)
    local key = recprefix .. id
    local s = redis.call('HGET', key, 's')
    if s then decr(counts, s) end
    redis.call('DEL', key)
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
      redis.call('ZREM', due, id)
    end
  end
  return n
end
