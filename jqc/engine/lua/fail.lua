-- fail: a job's holder reports a failed attempt. It is retried (after a backoff delay) while
-- attempts remain, else it fails for good: filed under failed and written to the dead letters.
--@include base, job, enqueue, claim, flow, finish, cancelled, token
--@keys meta wait prio delayed active failed dlq events minutes jobs logs dead metrics flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] token
-- ARGV[5]  failure reason    ARGV[6] traceback ('' if none)
-- ARGV[7]  worker id
-- ARGV[8]  retry delay (ms) if attempts remain; -1 = do not retry (fail for good now)
-- ARGV[9]  failure code (error, timeout, unrecoverable, corrupt: jqc.FailureCode), kept in 'fk'
-- ARGV[10] how many next jobs to claim (0 or absent = none), ARGV[11] their lock (ms), ARGV[12] worker id
-- ARGV[13] '1' to use the worker's retention instead of the job's: ARGV[14] count, ARGV[15] age ms
-- A job cancel.lua marked ends as its canceller asked, whatever ARGV[8] and ARGV[9] say (include/cancelled.lua).
-- Returns  {OK, 'retry'|'failed', failed attempts, claim_reply} (claim_reply as claim.lua returns, {}
--          when nothing is claimed) | {LOCK_LOST, reason}: nothing changed and nothing was claimed
--          | {LAYOUT_MISMATCH, reason}
local id = ARGV[3]
local keep = nil
if ARGV[13] == '1' then keep = {ARGV[14], ARGV[15]} end
local function fetch()
  local want = tonumber(ARGV[10] or 0)
  if want > 0 then return claim(want, tonumber(ARGV[11]), ARGV[12]) end
  return {}
end
local rec, err = check_token(id, ARGV[4])
if err then return err end
redis.call('ZREM', K_ACTIVE, id)
local started = tonumber(rec.ps)
local wait_ms, run_ms = started - (tonumber(rec.r or rec.t) or started), NOW - started
rec.tb = ARGV[6]
if rec.cx then
  local outcome = end_cancelled(id, rec, ARGV[7], wait_ms, run_ms, math.max(tonumber(ARGV[8]), 0), keep)
  return {OK, outcome, tonumber(rec.am) or 0, fetch()}
end
-- A corrupt (non-integer) count counts as 0 rather than erroring after the ZREM above.
local made = (tonumber(rec.am) or 0) + 1
rec.am = made
local delay = tonumber(ARGV[8])
if delay >= 0 and made < tonumber(rec.a or 1) then
  record_metrics('x', wait_ms, run_ms)
  rec.fr, rec.fk = ARGV[5], ARGV[9]
  if delay > 0 then
    schedule(id, rec, NOW + delay)
  else
    rec.r = NOW
    enqueue_stored(id, rec, false)
  end
  save_job(id, rec)
  emit('retrying', id, 'attempt', made, 'delay', delay, 'reason', ARGV[5])
  return {OK, 'retry', made, fetch()}
end
record_metrics('f', wait_ms, run_ms)
fail_for_good(id, rec, ARGV[7], ARGV[5], ARGV[9], keep)
flow_notify(id, rec, 'f', ARGV[5]) -- flows: tell the parent (include/flow.lua)
return {OK, 'failed', made, fetch()}
