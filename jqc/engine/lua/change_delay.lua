-- change_delay: reschedule a delayed job to run `delay` ms from now (0 = wait now).
--@include base, enqueue
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] new delay (ms, >= 0)
-- Returns  {OK} | {JOB_NOT_FOUND, reason} | {WRONG_STATE, reason}
local id = ARGV[3]
local state = job_state(id)
if not state then return {JOB_NOT_FOUND, 'no job ' .. id} end
if state ~= 'd' then return {WRONG_STATE, 'job ' .. id .. ' is not delayed'} end
local delay = tonumber(ARGV[4])
if delay > 0 then
  redis.call('ZADD', K_DELAYED, NOW + delay, id)
  redis.call('HSET', job_key(id), 'r', NOW + delay)
  refresh_next_due()
  emit('delayed', id, 'delay', delay)
else
  redis.call('ZREM', K_DELAYED, id)
  refresh_next_due()
  redis.call('HSET', job_key(id), 'r', NOW)
  enqueue_stored(id, false)
  emit('waiting', id)
end
return {OK}
