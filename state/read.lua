-- read.lua: read records of one shard (lib.lua is prepended).
--
-- KEYS: 1 records hash, 2 templates hash
-- ARGV: inquiry handles
--
-- Returns three entries per handle: its record ('' when there is none), its template id and
-- its template version id ('' when the record has none).

local out = {}
for _, id in ipairs(ARGV) do
  local raw = redis.call('HGET', KEYS[1], id)
  local template, version = '', ''
  if raw then
    local rec = decode(raw)
    if rec.t then
      template = redis.call('HGET', KEYS[2], '#' .. int(rec.t)) or ''
    end
    if rec.tv then
      version = redis.call('HGET', KEYS[2], '#' .. int(rec.tv)) or ''
    end
  end
  out[#out + 1] = raw or ''
  out[#out + 1] = template
  out[#out + 1] = version
end
return out
