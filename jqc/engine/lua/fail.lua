-- fail: a job's holder reports a failed attempt. It is retried (after a backoff delay) while
-- attempts remain, else it fails for good: filed under failed and written to the dead letters.
--@include base, enqueue, claim, finish, token
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] token
-- ARGV[5]  failure reason    ARGV[6] traceback ('' if none)
-- ARGV[7]  worker id
-- ARGV[8]  retry delay (ms) if attempts remain; -1 = do not retry (fail for good now)
-- ARGV[9]  failure code (error, timeout, unrecoverable, corrupt: jqc.FailureCode), kept in 'fk'
-- ARGV[10] how many next jobs to claim (0 or absent = none), ARGV[11] their lock (ms), ARGV[12] worker id
-- ARGV[13] '1' to use the worker's retention instead of the job's: ARGV[14] count, ARGV[15] age ms
-- A job cancel.lua marked ends as its canceller asked, whatever ARGV[8] and ARGV[9] say (finish.lua).
-- Returns  {OK, 'retry'|'failed', failed attempts, claim_reply} (claim_reply as claim.lua returns, {}
--          when nothing is claimed) | {LOCK_LOST, reason}: nothing changed and nothing was claimed.
local id = ARGV[3]
local keep = nil
if ARGV[13] == '1' then keep = {ARGV[14], ARGV[15]} end
local function fetch()
  local want = tonumber(ARGV[10] or 0)
  if want > 0 then return claim(want, tonumber(ARGV[11]), ARGV[12]) end
  return {}
end
local f, err = check_token(id, ARGV[4], 'ps', 'r', 't', 'a', 'fc', 'fa', 'p', 'l', 'cx')
if err then return err end
local jk = job_key(id)
redis.call('ZREM', K_ACTIVE, id)
if f[11] then
  local started = tonumber(f[3])
  redis.call('HSET', jk, 'tb', ARGV[6])
  local outcome = end_cancelled(id, ARGV[7], started - (tonumber(f[4] or f[5]) or started), NOW - started,
    math.max(tonumber(ARGV[8]), 0), keep)
  return {OK, outcome, tonumber(redis.call('HGET', jk, 'am')) or 0, fetch()}
end
-- Not HINCRBY: on a corrupt (non-integer) count it would error after the ZREM above and orphan the job.
local made = (tonumber(redis.call('HGET', jk, 'am')) or 0) + 1
redis.call('HSET', jk, 'am', made)
local started = tonumber(f[3])
local wait_ms, run_ms = started - (tonumber(f[4] or f[5]) or started), NOW - started
local delay = tonumber(ARGV[8])
redis.call('HSET', jk, 'tb', ARGV[6])
if delay >= 0 and made < tonumber(f[6] or 1) then
  record_metrics('x', wait_ms, run_ms)
  redis.call('HSET', jk, 'fr', ARGV[5], 'fk', ARGV[9])
  if delay > 0 then
    schedule(id, NOW + delay)
  else
    redis.call('HSET', jk, 'r', NOW)
    enqueue(id, tonumber(f[9] or 0), f[10] == '1', false)
  end
  emit('retrying', id, 'attempt', made, 'delay', delay, 'reason', ARGV[5])
  return {OK, 'retry', made, fetch()}
end
record_metrics('f', wait_ms, run_ms)
if keep then
  fail_for_good(id, ARGV[7], ARGV[5], ARGV[9], keep[1], keep[2])
else
  fail_for_good(id, ARGV[7], ARGV[5], ARGV[9], f[7], f[8])
end
return {OK, 'failed', made, fetch()}
