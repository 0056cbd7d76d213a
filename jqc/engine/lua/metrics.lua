-- metrics: the per-minute counters for a range of minutes, in one round trip (read only).
--@include base, finish
--@keys minutes metrics
-- ARGV[1]  now (ms, unused)  ARGV[2] events cap (unused)
-- ARGV[3]  first minute (epoch minutes, inclusive)   ARGV[4] last minute (inclusive)
-- Returns  {OK, minute, fields, minute, fields, ...} oldest first (fields: counter, value pairs)
local out = {OK}
for _, minute in ipairs(redis.call('ZRANGEBYSCORE', K_MINUTES, ARGV[3], ARGV[4])) do
  local names = minute_fields(minute)
  local values = redis.call('HMGET', K_METRICS, unpack(names))
  local fields = {}
  local skip = #minute + 2
  for i, v in ipairs(names) do
    if values[i] then
      fields[#fields + 1] = string.sub(v, skip)
      fields[#fields + 1] = values[i]
    end
  end
  out[#out + 1] = tonumber(minute)
  out[#out + 1] = fields
end
return out
