-- remove: delete a job that no worker holds, from whichever container it is in.
--@include base, job, enqueue
--@keys meta wait prio delayed completed failed events jobs logs parked
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id
-- Returns  {OK} | {JOB_NOT_FOUND, reason} | {JOB_ACTIVE, reason} | {LAYOUT_MISMATCH, reason}
local id = ARGV[3]
local rec = load_job(id)
if not rec then
  return layout_error(redis.call('HGET', K_META, 'v')) or {JOB_NOT_FOUND, 'no job ' .. id}
end
local state = state_of(rec)
if state == 'a' then return {JOB_ACTIVE, 'job ' .. id .. ' is held by a worker'} end
if state == 'w' then unqueue_waiting(id)
elseif state == 'd' then redis.call('ZREM', K_DELAYED, id); refresh_next_due()
elseif state == 'c' then redis.call('ZREM', K_COMPLETED, id)
elseif state == 'f' then redis.call('ZREM', K_FAILED, id)
elseif state == 'p' then redis.call('ZREM', K_PARKED, id) -- flows: waiting for its children
end
redis.call('HDEL', K_JOBS, id)
redis.call('HDEL', K_LOGS, id)
emit('removed', id)
return {OK}
