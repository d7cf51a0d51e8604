-- funnel_mark.lua: count the use of a reminder's link in the funnel (lib.lua is prepended):
-- 'opened' (its page viewed) or 'pressed' (its button pressed, which implies opened), each
-- once per reminder, attributed to the inquiry's last reminder ('fa'). Returns {} when
-- nothing was counted (no record, no reminder on record, or counted already), else
-- { attribution, steps (comma separated) }.
--
-- KEYS: 1 records hash, 2 templates hash, 3 funnel bucket of the day
-- ARGV: 1 inquiry handle   2 the rest of the inquiry id   3 step   4 when the bucket expires
--       (unix s)

local recs, id = KEYS[1], ARGV[1]
local rec = load(recs, id)
if not rec or rec.id ~= ARGV[2] or not rec.fa then
  return {}
end
local fa = rec.fa
local fl, steps = fa[3], {}
if bit.band(fl, FUNNEL_OPENED) == 0 then
  fl = bit.bor(fl, FUNNEL_OPENED)
  steps[#steps + 1] = 'opened'
end
if ARGV[3] == 'pressed' and bit.band(fl, FUNNEL_PRESSED) == 0 then
  fl = bit.bor(fl, FUNNEL_PRESSED)
  steps[#steps + 1] = 'pressed'
end
if #steps == 0 then
  return {}
end
for _, st in ipairs(steps) do
  funnelCount(KEYS[3], ARGV[4], fa[1], st)
end
rec.fa = { fa[1], fa[2], fl }
store(recs, id, rec)
return { funnelDims(KEYS[2], fa[1]), table.concat(steps, ',') }
