-- rate_limit: hold off every worker's claims on the queue until a time (a queue-wide manual rate
-- limit, e.g. an API answered 429). Kept in meta.rlu; claim.lua answers RATE_LIMITED until then.
-- A later hold never shortens an earlier one that is still running; 0 ms lifts the hold.
--@include base
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  how long to hold off claims (ms), 0 to lift the hold
-- Returns  {OK, until_ms} (0 when lifted)
local hold = tonumber(ARGV[3])
if hold == 0 then
  redis.call('HDEL', K_META, 'rlu')
  return {OK, 0}
end
local until_ms = NOW + hold
local current = tonumber(redis.call('HGET', K_META, 'rlu') or 0)
if current > until_ms then until_ms = current end
redis.call('HSET', K_META, 'rlu', until_ms)
return {OK, until_ms}
