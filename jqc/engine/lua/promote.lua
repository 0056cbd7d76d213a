-- promote: make a delayed job wait now, without waiting out its delay.
--@include base, job, enqueue
--@keys meta wait prio delayed events jobs
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id
-- Returns  {OK} | {JOB_NOT_FOUND, reason} | {WRONG_STATE, reason} | {LAYOUT_MISMATCH, reason}
local id = ARGV[3]
local rec = load_job(id)
if not rec then
  return layout_error(redis.call('HGET', K_META, 'v')) or {JOB_NOT_FOUND, 'no job ' .. id}
end
if state_of(rec) ~= 'd' then return {WRONG_STATE, 'job ' .. id .. ' is not delayed'} end
redis.call('ZREM', K_DELAYED, id)
refresh_next_due()
rec.r = NOW
enqueue_stored(id, rec, false)
save_job(id, rec)
emit('waiting', id)
return {OK}
