-- complete_many: a worker reports several successes at once and claims its next jobs, all in one
-- round trip. A stale token fails only its own job; the others complete.
--@include base, job, enqueue, claim, flow, finish, cancelled, token, complete
--@keys meta wait prio delayed active completed failed dlq events minutes jobs logs dead metrics flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  number of jobs N, then N triples: job id, token, result (JSON text)
-- then     how many next jobs to claim (0 = none), lock duration (ms), worker id, and optionally
--          '1', keep-completed count, age ms: the worker's retention instead of each job's
-- Returns  {OK, {r1, ..., rN}, claim_reply}: ri = 1 if job i completed, 0 if its token was stale
--          (that job was left unchanged); claim_reply as claim.lua returns, or {}. A job cancel.lua
--          marked ends cancelled instead of completing (it counts as reported: ri = 1).
local n = tonumber(ARGV[3])
local at = 4 + 3 * n
local keep = nil
if ARGV[at + 3] == '1' then keep = {ARGV[at + 4], ARGV[at + 5]} end
local done = {}
for i = 0, n - 1 do
  local a = 4 + 3 * i
  if complete_job(ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[at + 2], keep) then done[#done + 1] = 0 else done[#done + 1] = 1 end
end
local want = tonumber(ARGV[at])
if want > 0 then return {OK, done, claim(want, tonumber(ARGV[at + 1]), ARGV[at + 2])} end
return {OK, done, {}}
