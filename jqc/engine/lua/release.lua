-- release: a job's holder hands the job back without counting an attempt (rate limited, or the
-- worker is shutting down). It runs next, or after `delay` ms.
--@include base, job, enqueue, claim, token
--@keys meta wait prio delayed active events jobs
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] token
-- ARGV[5]  delay (ms) before it may run again (0 = at once, at the head of its priority)
-- ARGV[6]  how many next jobs to claim (0 or absent = none), ARGV[7] their lock (ms), ARGV[8] worker id
-- Returns  {OK, claim_reply} (claim_reply as claim.lua returns, {} when nothing is claimed)
--          | {LOCK_LOST, reason}: nothing changed and nothing was claimed | {LAYOUT_MISMATCH, reason}
local id = ARGV[3]
local rec, err = check_token(id, ARGV[4])
if err then return err end
redis.call('ZREM', K_ACTIVE, id)
local delay = tonumber(ARGV[5])
if delay > 0 then
  schedule(id, rec, NOW + delay)
  save_job(id, rec)
  emit('delayed', id, 'delay', delay)
else
  rec.r = NOW
  enqueue_stored(id, rec, true)
  save_job(id, rec)
  emit('waiting', id)
end
local want = tonumber(ARGV[6] or 0)
if want > 0 then return {OK, claim(want, tonumber(ARGV[7]), ARGV[8])} end
return {OK, {}}
