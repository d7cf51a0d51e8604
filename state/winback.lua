-- winback.lua: the win-back schedule of one shard (lib.lua is prepended). One script, three
-- operations (ARGV[1]): 'claim', 'intent', 'settle'. See winback.go.
--
-- KEYS: 1 records hash, 2 retention zset, 3 win-back state hash, 4 win-back times zset,
--       5 win-back cursor (string)
--
-- The state hash maps an inquiry handle to its win-back:
--   'c:<token>:<lease end ms>'  claimed; once the lease ends, another claim takes it over
--   'i:<token>'                 the holder is about to send: never sent again (at most once)
--   'd:<outcome>'               done (sent, or decided not to send)
-- The times zset holds each handle at the time it needs attention: a claim's lease end, a
-- done entry's end of retention (then it is deleted).
--
-- claim  ARGV: 2 now, 3 within (ms), 4 retention (ms), 5 lease (ms), 6 token, 7 limit,
--              8 skew (ms)
--   Claims up to limit inquiries that expired less than within ago and have no win-back
--   state: first those whose claim lease ran out before an intent was written, then new ones
--   found by walking the retention index (where an inquiry lands, at store time + retention,
--   when it stops being created/pending) from the cursor up to now - skew + retention.
--   Returns the claimed handles.
-- intent ARGV: 2 handle, 3 token, 4 now, 5 retention (ms)
--   Returns 1 when the token still holds the claim (now an intent), else 0.
-- settle ARGV: 2 handle, 3 token, 4 now, 5 retention (ms), 6 outcome, 7 retry at (ms, or '')
--   With a retry time: the claim (not an intent) is kept until then, so a later claim takes
--   it over. Otherwise the win-back is done with outcome. Returns 1, or 0 when the token
--   holds neither the claim nor the intent.

local recs, ret, st, times, curkey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local op = ARGV[1]

-- expiredAt is when an expired record expired: expired-at, else the time of the event that
-- made it expired, else its expires-at.
local function expiredAt(rec)
  return rec.xa or rec.sa or rec.x
end

-- forget deletes the contact an expired record kept for its win-back (apply.lua ARGV[28]).
local function forget(h)
  local rec = load(recs, h)
  if rec and not resumable(rec.s) and (rec.em or rec.nf) then
    rec.em, rec.nf = nil, nil
    store(recs, h, rec)
  end
end

local function eligible(rec, now, within)
  if not rec or rec.s ~= 'expired' then return false end
  local at = expiredAt(rec)
  return at ~= nil and now - at < within
end

if op == 'claim' then
  local now, within, retention = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local lease, token, limit, skew = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
  local claimed = {}
  local function claim(h)
    local leaseEnd = now + lease
    redis.call('HSET', st, h, 'c:' .. token .. ':' .. int(leaseEnd))
    redis.call('ZADD', times, leaseEnd, h)
    claimed[#claimed + 1] = h
  end
  -- Entries due for attention: expired claims are taken over, done ones forgotten.
  for _, h in ipairs(redis.call('ZRANGEBYSCORE', times, '-inf', now, 'LIMIT', 0, limit)) do
    local s = redis.call('HGET', st, h) or ''
    if sub(s, 1, 2) == 'c:' and #claimed < limit then
      if eligible(load(recs, h), now, within) then
        claim(h)
      else
        redis.call('HSET', st, h, 'd:gone')
        redis.call('ZADD', times, now + retention, h)
        forget(h)
      end
    elseif sub(s, 1, 2) ~= 'c:' then
      redis.call('HDEL', st, h)
      redis.call('ZREM', times, h)
    end
  end
  -- New candidates from the retention index.
  local cursor = tonumber(redis.call('GET', curkey) or '') or (now - within + retention)
  local hi = now - skew + retention
  if #claimed < limit and cursor < hi then
    local seen = redis.call('ZRANGEBYSCORE', ret, '(' .. int(cursor), int(hi), 'WITHSCORES', 'LIMIT', 0, 4 * limit)
    local last = cursor
    for i = 1, #seen, 2 do
      local h, score = seen[i], tonumber(seen[i + 1])
      if #claimed >= limit and score > last then break end
      last = score
      if redis.call('HEXISTS', st, h) == 0 then
        if eligible(load(recs, h), now, within) then
          claim(h)
        else
          forget(h)
        end
      end
    end
    if #seen < 8 * limit then
      -- Fewer than asked for: everything up to hi was read.
      if #claimed < limit then last = hi end
    end
    redis.call('SET', curkey, int(last))
  end
  return claimed
elseif op == 'intent' then
  local h, token, now, retention = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
  local s = redis.call('HGET', st, h) or ''
  if sub(s, 1, 3 + #token) ~= 'c:' .. token .. ':' then return 0 end
  redis.call('HSET', st, h, 'i:' .. token)
  redis.call('ZADD', times, now + retention, h)
  return 1
elseif op == 'settle' then
  local h, token, now, retention, outcome, retry = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
  local s = redis.call('HGET', st, h) or ''
  local holdsClaim = sub(s, 1, 3 + #token) == 'c:' .. token .. ':'
  if not holdsClaim and s ~= 'i:' .. token then return 0 end
  if retry ~= '' and holdsClaim then
    redis.call('HSET', st, h, 'c:' .. token .. ':' .. retry)
    redis.call('ZADD', times, tonumber(retry), h)
    return 1
  end
  redis.call('HSET', st, h, 'd:' .. outcome)
  redis.call('ZADD', times, now + retention, h)
  forget(h)
  return 1
end
return redis.error_reply('unknown win-back operation')
