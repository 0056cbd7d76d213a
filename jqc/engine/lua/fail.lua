-- fail: a job's holder reports a failed attempt. It is retried (after a backoff delay) while
-- attempts remain, else it fails for good: filed under failed and written to the dead letters.
--@include base, job, enqueue, flow, finish, token
--@keys meta wait prio delayed active failed dlq events minutes jobs logs dead metrics flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] token
-- ARGV[5]  failure reason    ARGV[6] traceback ('' if none)
-- ARGV[7]  worker id
-- ARGV[8]  retry delay (ms) if attempts remain; -1 = do not retry (fail for good now)
-- ARGV[9]  failure code (error, timeout, unrecoverable, corrupt: jqc.FailureCode), kept in 'fk'
-- Returns  {OK, 'retry'|'failed', failed attempts} | {LOCK_LOST, reason} | {LAYOUT_MISMATCH, reason}
local id = ARGV[3]
local rec, err = check_token(id, ARGV[4])
if err then return err end
redis.call('ZREM', K_ACTIVE, id)
-- A corrupt (non-integer) count counts as 0 rather than erroring after the ZREM above.
local made = (tonumber(rec.am) or 0) + 1
rec.am = made
local started = tonumber(rec.ps)
local wait_ms, run_ms = started - (tonumber(rec.r or rec.t) or started), NOW - started
local delay = tonumber(ARGV[8])
rec.tb = ARGV[6]
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
  return {OK, 'retry', made}
end
record_metrics('f', wait_ms, run_ms)
fail_for_good(id, rec, ARGV[7], ARGV[5], ARGV[9])
flow_notify(id, rec, 'f', ARGV[5]) -- flows: tell the parent (include/flow.lua)
return {OK, 'failed', made}
