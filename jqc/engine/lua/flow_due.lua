-- flow_due: a bounded step through the queue's K_FLOWS hash for the repair chore: the unfinished
-- flow creations (i:<root id>) and undelivered child outcomes (o:<child id>) written at or before
-- a cut-off (read only).
--@include base
--@keys flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  HSCAN cursor      ARGV[4] how many fields to look at (COUNT)
-- ARGV[5]  cut-off (ms): only entries written at or before it
-- Returns  {OK, next cursor ('0' when done), field, value, ...}
local page = redis.call('HSCAN', K_FLOWS, ARGV[3], 'COUNT', tonumber(ARGV[4]))
local cutoff = tonumber(ARGV[5])
local out = {OK, page[1]}
local items = page[2]
for i = 1, #items, 2 do
  local t = tonumber(decode(items[i + 1]).t)
  if t and t <= cutoff then
    out[#out + 1] = items[i]
    out[#out + 1] = items[i + 1]
  end
end
return out
