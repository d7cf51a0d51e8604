-- lib.lua is prepended to apply.lua and purge.lua: helpers both scripts share.
--
-- Record keys of the shard are built here from the record key prefix the caller passes
-- ("<prefix>:{<shard>}:i:"): they carry the same hash tag as the KEYS, so they are in the
-- same Redis Cluster slot as everything else the script touches.

-- int formats a number as a decimal integer (no exponent), for values stored as text.
local function int(x)
  return string.format('%d', x)
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
