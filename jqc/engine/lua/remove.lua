-- remove: delete a job that no worker holds, from whichever container it is in.
--@include base, enqueue
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id
-- Returns  {OK} | {JOB_NOT_FOUND, reason} | {JOB_ACTIVE, reason}
local id = ARGV[3]
local state = job_state(id)
if not state then return {JOB_NOT_FOUND, 'no job ' .. id} end
if state == 'a' then return {JOB_ACTIVE, 'job ' .. id .. ' is held by a worker'} end
if state == 'w' then unqueue_waiting(id)
elseif state == 'd' then redis.call('ZREM', K_DELAYED, id); refresh_next_due()
elseif state == 'c' then redis.call('ZREM', K_COMPLETED, id)
elseif state == 'f' then redis.call('ZREM', K_FAILED, id)
end
redis.call('DEL', job_key(id), log_key(id))
emit('removed', id)
return {OK}
