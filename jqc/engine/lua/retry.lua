-- retry: send failed jobs back to waiting, by default with failed attempts and stalls reset (a
-- fresh budget); their dead-letter records are withdrawn (a job that fails again is dead-lettered
-- again). A completed job named by id runs again too (its result is cleared). Runs (rn) are
-- history and are kept either way.
--@include base, enqueue
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id (a failed or completed job), or '' for the oldest failed jobs
-- ARGV[4]  most jobs to retry when ARGV[3] is ''
-- ARGV[5]  '1' to reset failed attempts (am) and stalls (sc), '0' to keep them (one more run)
-- Returns  {OK, {ids}} or {MORE, {ids}} when more failed jobs remain | {JOB_NOT_FOUND, reason} |
--          {WRONG_STATE, reason}
local ids
if ARGV[3] ~= '' then
  local state = job_state(ARGV[3])
  if not state then return {JOB_NOT_FOUND, 'no job ' .. ARGV[3]} end
  if state ~= 'f' and state ~= 'c' then
    return {WRONG_STATE, 'job ' .. ARGV[3] .. ' has not failed or completed'}
  end
  ids = {ARGV[3]}
else
  ids = redis.call('ZRANGE', K_FAILED, 0, tonumber(ARGV[4]) - 1)
end
for _, id in ipairs(ids) do
  local jk = job_key(id)
  if redis.call('HGET', jk, 's') == 'c' then
    redis.call('ZREM', K_COMPLETED, id)
    redis.call('HDEL', jk, 'rv')
  else
    redis.call('ZREM', K_FAILED, id)
    redis.call('ZREM', K_DLQ, id)
    redis.call('DEL', dead_key(id))
  end
  if ARGV[5] == '0' then
    redis.call('HDEL', jk, 'fo', 'ps')
  else
    redis.call('HDEL', jk, 'am', 'sc', 'fo', 'ps')
  end
  redis.call('HINCRBY', jk, 'rt', 1)
  redis.call('HSET', jk, 'r', NOW)
  enqueue_stored(id, false)
  emit('waiting', id, 'retried', '1')
end
if ARGV[3] == '' and redis.call('ZCARD', K_FAILED) > 0 then return {MORE, ids} end
return {OK, ids}
