-- retry: send failed jobs back to waiting, by default with failed attempts and stalls reset (a
-- fresh budget); their dead-letter records are withdrawn (a job that fails again is dead-lettered
-- again). A completed job named by id runs again too (its result is cleared). Runs (rn) are
-- history and are kept either way.
--@include base, job, enqueue
--@keys meta wait prio completed failed dlq events jobs dead
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id (a failed or completed job), or '' for the oldest failed jobs
-- ARGV[4]  most jobs to retry when ARGV[3] is ''
-- ARGV[5]  '1' to reset failed attempts (am) and stalls (sc), '0' to keep them (one more run)
-- Returns  {OK, {ids}} or {MORE, {ids}} when more failed jobs remain | {JOB_NOT_FOUND, reason} |
--          {WRONG_STATE, reason} | {LAYOUT_MISMATCH, reason}
local ids
if ARGV[3] ~= '' then
  local rec = load_job(ARGV[3])
  if not rec then
    return layout_error(redis.call('HGET', K_META, 'v')) or {JOB_NOT_FOUND, 'no job ' .. ARGV[3]}
  end
  local state = state_of(rec)
  if state ~= 'f' and state ~= 'c' then
    return {WRONG_STATE, 'job ' .. ARGV[3] .. ' has not failed or completed'}
  end
  ids = {ARGV[3]}
else
  local bad = layout_error(redis.call('HGET', K_META, 'v'))
  if bad then return bad end
  ids = redis.call('ZRANGE', K_FAILED, 0, tonumber(ARGV[4]) - 1)
end
for _, id in ipairs(ids) do
  local rec = load_job(id)
  if rec and rec.s == 'c' then
    redis.call('ZREM', K_COMPLETED, id)
    rec.rv = nil
  else
    redis.call('ZREM', K_FAILED, id)
    redis.call('ZREM', K_DLQ, id)
    redis.call('HDEL', K_DEAD, id)
  end
  if rec then
    rec.fo, rec.ps = nil, nil
    if ARGV[5] ~= '0' then rec.am, rec.sc = nil, nil end
    rec.rt = (tonumber(rec.rt) or 0) + 1
    rec.r = NOW
    enqueue_stored(id, rec, false)
    save_job(id, rec)
    emit('waiting', id, 'retried', '1')
  end
end
if ARGV[3] == '' and redis.call('ZCARD', K_FAILED) > 0 then return {MORE, ids} end
return {OK, ids}
