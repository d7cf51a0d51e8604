-- schedule_settle.lua: settle a claimed reminder, only while the caller still holds the
-- lease (lib.lua is prepended). Returns 1, or 0 when the inquiry's lease token (in the leases
-- hash, see leaseParts) is not the caller's: the lease ran out and was taken over, or the
-- record is gone. Nothing changes on 0. An inquiry that left created/pending while leased
-- keeps its lease (apply.lua leaves it), so the holder still records what it sent.
-- 'complete' with an attribution returns 2 when it counted the inquiry's first reminder.
--
-- KEYS: 1 records hash, 2 reminder queue zset, 3 sweep cursors, 4 leases hash,
--       5 templates hash, 6 funnel bucket of the day (see funnelCount in lib.lua)
-- ARGV: 1 operation   2 inquiry handle   3 lease token   4 stages "<name>:<ms>,..."
--       5.. per operation:
--   complete  5 stages done, comma separated ('' = none): added to rm (once each), with
--               the stage@channel marks of those stages removed; then the inquiry is
--               scheduled for its next unsent stage (schedule in lib.lua); attempts reset.
--             6 funnel attribution of the reminder sent or held out ('' = none): counted
--               as a reminder (and the inquiry's first, once) and kept in 'fa'
--             7 when the funnel bucket expires (unix s)   8 the store's clock (unix ms)
--   release   5 retry time (unix ms)   6 stage@channel marks to add to rm ('' = none):
--               the inquiry is queued at the retry time and attempts ('ra') go up by one.
--   drop      5 reason: the inquiry leaves the schedule, the reason is kept in 'rd' (the
--               sweeps pass it by); attempts reset.
--   intent    5 stage: the holder is about to send the stage; it is kept with the lease, and
--               a claim that takes the lease over returns it (nothing else changes; the lease
--               stays).
-- The lease is cleared in every case but intent.

local recs, queue, curkey, leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op, id = ARGV[1], ARGV[2]
local held = redis.call('HGET', leases, id)
local token, ends = leaseParts(held)
if not held or token ~= ARGV[3] then
  return 0
end
local rec = load(recs, id)
if not rec then
  return 0
end
local result = 1
if op == 'intent' then
  redis.call('HSET', leases, id, token .. '|' .. int(ends) .. '|' .. ARGV[5])
  return 1
end

-- addEntries appends the comma separated entries of add to the record's rm, skipping entries
-- it already has and dropping the entries for which remove returns true.
local function addEntries(add, remove)
  local list, have = {}, {}
  for e in string.gmatch(rec.rm or '', '[^,]+') do
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
  local rm = table.concat(list, ',')
  rec.rm = rm ~= '' and rm or nil
end

if op == 'complete' then
  local done = {}
  for e in string.gmatch(ARGV[5], '[^,]+') do
    done[e] = true
  end
  addEntries(ARGV[5], function(e)
    local stage = string.match(e, '^(.-)@')
    return stage ~= nil and done[stage] == true
  end)
  rec.ra = nil
  schedule(queue, curkey, id, rec, ARGV[4])
  local dims = ARGV[6]
  if dims and dims ~= '' then
    local code = funnelCode(KEYS[5], dims)
    funnelCount(KEYS[6], ARGV[7], code, 'reminder')
    if not rec.fa then
      funnelCount(KEYS[6], ARGV[7], code, 'inquiry')
      result = 2
    end
    -- A record that is no longer created/pending has nothing left to attribute.
    if resumable(rec.s) then
      rec.fa = { code, tonumber(ARGV[8]), 0 }
    end
  end
elseif op == 'release' then
  addEntries(ARGV[6], function() return false end)
  rec.ra = (rec.ra or 0) + 1
  if resumable(rec.s) and rec.x then
    redis.call('ZADD', queue, ARGV[5], id)
  else
    redis.call('ZREM', queue, id)
  end
elseif op == 'drop' then
  rec.ra = nil
  rec.rd = ARGV[5]
  redis.call('ZREM', queue, id)
else
  return redis.error_reply('unknown settle operation ' .. op)
end
redis.call('HDEL', leases, id)
store(recs, id, rec)
return result
