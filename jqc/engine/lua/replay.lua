-- replay: send a dead-lettered job back to waiting with attempts and stalls reset, counting the
-- replay on the job (rp). The job is rebuilt from its dead-letter record if it was removed since.
--@include base, job, enqueue, flow
--@keys meta wait prio failed dlq events jobs dead flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id
-- Returns  {OK} | {JOB_NOT_FOUND, reason} (no dead letter) | {WRONG_STATE, reason} (the job id is
--          in use by a live job again; the dead letter is left as it is) | {LAYOUT_MISMATCH, reason}
local id = ARGV[3]
local letter = redis.call('HGET', K_DEAD, id)
if not letter then
  return layout_error(redis.call('HGET', K_META, 'v')) or {JOB_NOT_FOUND, 'no dead letter for job ' .. id}
end
local rec = load_job(id)
local state = rec and state_of(rec)
if state and state ~= 'f' then
  return {WRONG_STATE, 'job id ' .. id .. ' belongs to a live job again (state ' .. state .. ')'}
end
if state == 'f' then
  redis.call('ZREM', K_FAILED, id)
else
  rec = decode(letter)
end
for _, name in ipairs({'am', 'sc', 'fo', 'ps', 'k', 'dat', 'dw'}) do rec[name] = nil end
rec.rp = (tonumber(rec.rp) or 0) + 1
rec.r = NOW
enqueue_stored(id, rec, false)
save_job(id, rec)
redis.call('ZREM', K_DLQ, id)
redis.call('HDEL', K_DEAD, id)
emit('waiting', id, 'replayed', '1')
flow_notify(id, rec, 'r', '') -- flows: a parent this job failed resumes waiting for it
return {OK}
