-- rate_limit: hold off every worker's claims on the queue until a time (a queue-wide manual rate
-- limit, e.g. an API answered 429). Kept in meta.rlu; claim.lua answers RATE_LIMITED until then.
-- A later hold never shortens an earlier one that is still running; 0 ms lifts the hold.
--@include base
--@keys meta
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  how long to hold off claims (ms), 0 to lift the hold
-- Returns  {OK, until_ms} (0 when lifted) | {LAYOUT_MISMATCH, reason}
local m = redis.call('HMGET', K_META, 'rlu', 'v')
local bad = layout_error(m[2])
if bad then return bad end
local hold = tonumber(ARGV[3])
if hold == 0 then
  redis.call('HDEL', K_META, 'rlu')
  return {OK, 0}
end
local until_ms = NOW + hold
local current = tonumber(m[1] or 0)
if current > until_ms then until_ms = current end
redis.call('HSET', K_META, 'rlu', until_ms, 'v', LAYOUT)
return {OK, until_ms}
