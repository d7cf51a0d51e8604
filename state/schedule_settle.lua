-- schedule_settle.lua: settle a claimed reminder, only while the caller still holds the
-- lease (lib.lua is prepended). Returns 1, or 0 when the record's lease token ('ls') is not
-- the caller's: the lease ran out and was taken over, or the inquiry left created/pending
-- (apply.lua clears the lease then), or the record is gone. Nothing changes on 0.
--
-- KEYS: 1 record hash, 2 due zset of its shard
-- ARGV: 1 operation   2 inquiry id   3 lease token   4 stages "<name>:<ms>,..."
--       5.. per operation:
--   complete  5 stages done, comma separated ('' = none): added to rm (once each), with
--               the stage@channel marks of those stages removed; then the inquiry is
--               scheduled at its next unsent stage, or leaves due; attempts reset.
--   release   5 retry time (unix ms)   6 stage@channel marks to add to rm ('' = none):
--               the member is re-scored to the retry time and attempts ('ra') go up by one.
--   drop      5 reason: the member leaves due, the reason is kept in 'rd'; attempts reset.
-- The lease ('ls') is cleared in every case.

local rec, due = KEYS[1], KEYS[2]
local op, id = ARGV[1], ARGV[2]
if redis.call('HGET', rec, 'ls') ~= ARGV[3] then
  return 0
end

-- addEntries appends the comma separated entries of add to the record's rm, skipping entries
-- it already has and dropping the entries for which remove returns true.
local function addEntries(add, remove)
  local rm = redis.call('HGET', rec, 'rm') or ''
  local list, have = {}, {}
  for e in string.gmatch(rm, '[^,]+') do
    if not have[e] and not remove(e) then
      list[#list + 1] = e
      have[e] = true
    end
  end
  for e in string.gmatch(add, '[^,]+') do
    if not have[e] then
      list[#list + 1] = e
      have[e] = true
    end
  end
  local v = table.concat(list, ',')
  if v == '' then
    redis.call('HDEL', rec, 'rm')
  else
    redis.call('HSET', rec, 'rm', v)
  end
  return v
end

if op == 'complete' then
  local done = {}
  for e in string.gmatch(ARGV[5], '[^,]+') do
    done[e] = true
  end
  local rm = addEntries(ARGV[5], function(e)
    local stage = string.match(e, '^(.-)@')
    return stage ~= nil and done[stage] == true
  end)
  redis.call('HDEL', rec, 'ls', 'ra')
  local f = redis.call('HMGET', rec, 's', 'x')
  schedule(due, id, f[1], f[2], rm, ARGV[4])
elseif op == 'release' then
  if ARGV[6] ~= '' then
    addEntries(ARGV[6], function() return false end)
  end
  redis.call('HDEL', rec, 'ls')
  redis.call('HINCRBY', rec, 'ra', 1)
  redis.call('ZADD', due, ARGV[5], id)
elseif op == 'drop' then
  redis.call('HDEL', rec, 'ls', 'ra')
  redis.call('HSET', rec, 'rd', ARGV[5])
  redis.call('ZREM', due, id)
else
  return redis.error_reply('unknown settle operation ' .. op)
end
return 1
