-- complete: a job's holder reports success; optionally claims its next jobs in the same call.
--@include base, job, enqueue, claim, flow, finish, cancelled, token, complete
--@keys meta wait prio delayed active completed failed dlq events minutes jobs logs dead metrics flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] token
-- ARGV[5]  result (JSON text)
-- ARGV[6]  how many next jobs to claim (0 = none)
-- ARGV[7]  lock duration (ms) for the next jobs
-- ARGV[8]  worker id
-- ARGV[9]  '1' to use the worker's retention below instead of the job's (absent or '' = the job's)
-- ARGV[10] keep-completed count, ARGV[11] keep-completed age ms ('' = unlimited)
-- Returns  {OK, claim_reply} (claim_reply as claim.lua returns, or {} when ARGV[6] is 0)
--          | {LOCK_LOST, reason}: the token is stale, nothing changed and nothing was claimed.
--          A job cancel.lua marked ends cancelled instead of completing (include/cancelled.lua).
local keep = nil
if ARGV[9] == '1' then keep = {ARGV[10], ARGV[11]} end
local err = complete_job(ARGV[3], ARGV[4], ARGV[5], ARGV[8], keep)
if err then return err end
local want = tonumber(ARGV[6])
if want > 0 then return {OK, claim(want, tonumber(ARGV[7]), ARGV[8])} end
return {OK, {}}
