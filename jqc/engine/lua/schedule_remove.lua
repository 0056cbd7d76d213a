-- schedule_remove: delete a schedule by name (jobs it already added stay).
--@include base
-- KEYS[1]  queue key prefix   KEYS[2] schedules (sorted set)   KEYS[3] the schedule's record (hash)
-- KEYS[4]  events
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  schedule name
-- Returns  {OK, removed (1|0)}
local removed = redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[3])
if removed == 1 then emit('unscheduled', '', 's', ARGV[3]) end
return {OK, removed}
