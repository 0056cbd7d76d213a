-- obliterate: delete the whole queue (jobs, logs, dead letters, metrics, events, settings) in
-- bounded batches. Refuses while workers hold jobs unless forced. Works on any key layout version:
-- it is how a queue an older jqc wrote is cleared (the caller then sweeps strays with SCAN).
--@include base
--@keys meta wait prio delayed active completed failed dlq events minutes jobs logs dead metrics parked flows
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  '1' to delete even when jobs are active
-- ARGV[4]  most jobs to delete in this call
-- ARGV[5]  '1' to delete even when the queue holds flow members (parents waiting for children,
--          children's undelivered outcomes, unfinished flow creations): see docs/workflows.md
-- Returns  {OK, deleted} when the queue is gone | {MORE, deleted} | {JOB_ACTIVE, reason}
--          | {WRONG_STATE, reason} (flow members and ARGV[5] not '1')
if ARGV[3] ~= '1' and redis.call('ZCARD', K_ACTIVE) > 0 then
  return {JOB_ACTIVE, 'queue has active jobs; stop its workers or force'}
end
if ARGV[5] ~= '1' and (redis.call('ZCARD', K_PARKED) > 0 or redis.call('HLEN', K_FLOWS) > 0) then
  return {WRONG_STATE, 'queue holds flow members (parents waiting for children, undelivered child outcomes): ' ..
    'their parents or children on other queues would wait forever; finish or remove the flows first, or force'}
end
local budget = tonumber(ARGV[4])
local deleted = 0
local function forget(ids)
  if #ids == 0 then return end
  redis.call('HDEL', K_JOBS, unpack(ids))
  redis.call('HDEL', K_LOGS, unpack(ids))
  deleted = deleted + #ids
end
local ids = redis.call('LRANGE', K_WAIT, 0, budget - 1)
if #ids > 0 then redis.call('LTRIM', K_WAIT, #ids, -1) end
forget(ids)
-- The sorted sets of job ids, one after another while the budget lasts.
local function take(zkey)
  if deleted >= budget then return {} end
  local taken = redis.call('ZRANGE', zkey, 0, budget - deleted - 1)
  if #taken > 0 then redis.call('ZREM', zkey, unpack(taken)) end
  return taken
end
forget(take(K_PRIO))
forget(take(K_DELAYED))
forget(take(K_PARKED))
forget(take(K_ACTIVE))
forget(take(K_COMPLETED))
forget(take(K_FAILED))
ids = take(K_DLQ)
if #ids > 0 then
  redis.call('HDEL', K_DEAD, unpack(ids))
  deleted = deleted + #ids
end
if deleted >= budget then return {MORE, deleted} end
-- Whatever is left in the per-queue hashes (a job no container listed, metrics) goes with them.
redis.call('DEL', K_META, K_EVENTS, K_WAIT, K_PRIO, K_DELAYED, K_ACTIVE, K_COMPLETED, K_FAILED, K_DLQ,
  K_MINUTES, K_JOBS, K_LOGS, K_DEAD, K_METRICS, K_PARKED, K_FLOWS)
return {OK, deleted}
