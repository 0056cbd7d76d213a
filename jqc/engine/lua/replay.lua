-- replay: send a dead-lettered job back to waiting with attempts and stalls reset, counting the
-- replay on the job (rp). The job is rebuilt from its dead-letter record if it was removed since.
--@include base, enqueue
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id
-- Returns  {OK} | {JOB_NOT_FOUND, reason} (no dead letter) | {WRONG_STATE, reason} (the job id is
--          in use by a live job again; the dead letter is left as it is)
local id = ARGV[3]
local dk = dead_key(id)
if redis.call('EXISTS', dk) == 0 then return {JOB_NOT_FOUND, 'no dead letter for job ' .. id} end
local jk = job_key(id)
local state = job_state(id)
if state and state ~= 'f' then
  return {WRONG_STATE, 'job id ' .. id .. ' belongs to a live job again (state ' .. state .. ')'}
end
if state == 'f' then
  redis.call('ZREM', K_FAILED, id)
else
  redis.call('HSET', jk, unpack(redis.call('HGETALL', dk)))
end
redis.call('HDEL', jk, 'am', 'sc', 'fo', 'ps', 'k', 'dat', 'dw')
redis.call('HINCRBY', jk, 'rp', 1)
redis.call('HSET', jk, 'r', NOW)
enqueue_stored(id, false)
redis.call('ZREM', K_DLQ, id)
redis.call('DEL', dk)
emit('waiting', id, 'replayed', '1')
return {OK}
