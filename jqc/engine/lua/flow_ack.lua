-- flow_ack: a child's outcome was delivered to its parent; drop the outbox message, unless a newer
-- outcome (the child was replayed and finished again) has replaced it meanwhile.
--@include base
--@keys flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  child id          ARGV[4] the delivered message (packed, as the outbox held it)
-- Returns  {OK, 1 if dropped, else 0}
local field = 'o:' .. ARGV[3]
if redis.call('HGET', K_FLOWS, field) ~= ARGV[4] then return {OK, 0} end
redis.call('HDEL', K_FLOWS, field)
return {OK, 1}
