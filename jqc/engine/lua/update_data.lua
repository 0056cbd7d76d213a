-- update_data: replace the data of a job that has not started: waiting or delayed.
--@include base
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] the new data (JSON text, checked and size-capped by the caller)
-- Returns  {OK} | {JOB_NOT_FOUND, reason} | {JOB_ACTIVE, reason} (a worker holds it)
--          | {WRONG_STATE, reason} (it finished)
local id = ARGV[3]
local state = job_state(id)
if not state then return {JOB_NOT_FOUND, 'no job ' .. id} end
if state == 'a' then return {JOB_ACTIVE, 'job ' .. id .. ' is active: its data can no longer change'} end
if state ~= 'w' and state ~= 'd' then
  return {WRONG_STATE, 'job ' .. id .. ' has finished: only a waiting or delayed job takes new data'}
end
redis.call('HSET', job_key(id), 'd', ARGV[4])
emit('updated', id)
return {OK}
