-- schedule_backlog.lua: count the reminders of one shard that are due and not claimed (lib.lua
-- is prepended).
--
-- KEYS: 1 expiry zset, 2 reminder queue zset, 3 sweep cursors
-- ARGV: 1 now (unix ms)   2 reminder stages "<name>:<before ms>,..."
--
-- The count is the queue's members scored at or before now plus the inquiries of the expiry
-- index that some stage's sweep would read next: after the stage's cursor, up to now + the
-- stage (each inquiry once). Those include inquiries the sweep will pass by (the stage done,
-- dropped, leased or queued), so the count is an upper bound until the next sweep. Its cost
-- is a few O(log n) calls per stage.

local exp, queue = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local n = redis.call('ZCOUNT', queue, '-inf', int(now))
local curs = cursors(KEYS[3])
local spans = {}
for _, st in ipairs(stageList(ARGV[2])) do
  local lo = position(exp, curs[st[1]])
  local hi = redis.call('ZCOUNT', exp, '-inf', int(now + st[2]))
  if hi > lo then spans[#spans + 1] = { lo, hi } end
end
table.sort(spans, function(a, b) return a[1] < b[1] end)
local reach = 0
for _, s in ipairs(spans) do
  if s[2] > reach then
    n = n + s[2] - math.max(s[1], reach)
    reach = s[2]
  end
end
return n
