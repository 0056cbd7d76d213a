-- promote: make a delayed job wait now, without waiting out its delay.
--@include base, enqueue
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id
-- Returns  {OK} | {JOB_NOT_FOUND, reason} | {WRONG_STATE, reason}
local id = ARGV[3]
local state = job_state(id)
if not state then return {JOB_NOT_FOUND, 'no job ' .. id} end
if state ~= 'd' then return {WRONG_STATE, 'job ' .. id .. ' is not delayed'} end
redis.call('ZREM', K_DELAYED, id)
refresh_next_due()
redis.call('HSET', job_key(id), 'r', NOW)
enqueue_stored(id, false)
emit('waiting', id)
return {OK}
