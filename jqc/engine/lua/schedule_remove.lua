-- schedule_remove: delete a schedule by name (jobs it already added stay).
--@include base
--@keys schedules record events
-- KEYS     as --@keys names them; record = the schedule's record (hash P:{Q}:sc:<name>)
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  schedule name
-- Returns  {OK, removed (1|0)}
local removed = redis.call('DEL', K_RECORD)
redis.call('ZREM', K_SCHEDULES, ARGV[3])
if removed == 1 then emit('unscheduled', '', 's', ARGV[3]) end
return {OK, removed}
