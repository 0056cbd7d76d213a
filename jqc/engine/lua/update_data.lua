-- update_data: replace the data of a job that has not started: waiting or delayed.
--@include base, job
--@keys meta events jobs
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] the new data (JSON text, checked and size-capped by the caller)
-- Returns  {OK} | {JOB_NOT_FOUND, reason} | {JOB_ACTIVE, reason} (a worker holds it)
--          | {WRONG_STATE, reason} (it finished) | {LAYOUT_MISMATCH, reason}
local id = ARGV[3]
local rec = load_job(id)
if not rec then
  return layout_error(redis.call('HGET', K_META, 'v')) or {JOB_NOT_FOUND, 'no job ' .. id}
end
local state = state_of(rec)
if state == 'a' then return {JOB_ACTIVE, 'job ' .. id .. ' is active: its data can no longer change'} end
if state ~= 'w' and state ~= 'd' then
  return {WRONG_STATE, 'job ' .. id .. ' has finished: only a waiting or delayed job takes new data'}
end
rec.d = ARGV[4]
save_job(id, rec)
emit('updated', id)
return {OK}
