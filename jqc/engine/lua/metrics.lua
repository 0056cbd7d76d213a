-- metrics: the per-minute metric hashes for a range of minutes, in one round trip (read only).
--@include base
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms, unused)  ARGV[2] events cap (unused)
-- ARGV[3]  first minute (epoch minutes, inclusive)   ARGV[4] last minute (inclusive)
-- Returns  {OK, minute, fields, minute, fields, ...} oldest first
local out = {OK}
for _, minute in ipairs(redis.call('ZRANGEBYSCORE', K_MINUTES, ARGV[3], ARGV[4])) do
  out[#out + 1] = tonumber(minute)
  out[#out + 1] = redis.call('HGETALL', BASE .. 'm:' .. minute)
end
return out
