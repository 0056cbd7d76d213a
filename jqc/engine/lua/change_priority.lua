-- change_priority: give a job a new priority; a waiting job moves to its new place at once.
--@include base, job, enqueue
--@keys meta wait prio jobs
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  job id            ARGV[4] new priority (negative runs before the default 0)
-- Returns  {OK} | {JOB_NOT_FOUND, reason} | {LAYOUT_MISMATCH, reason}
local id = ARGV[3]
local rec = load_job(id)
if not rec then
  return layout_error(redis.call('HGET', K_META, 'v')) or {JOB_NOT_FOUND, 'no job ' .. id}
end
local lifo = rec.l == '1'
local priority = tonumber(ARGV[4])
if priority ~= 0 then rec.p = priority else rec.p = nil end
save_job(id, rec)
if state_of(rec) == 'w' then
  unqueue_waiting(id)
  push_waiting(id, priority, lifo, false)
end
return {OK}
