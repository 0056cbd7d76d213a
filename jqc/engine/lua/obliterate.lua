-- obliterate: delete the whole queue (jobs, logs, dead letters, metrics, events, settings) in
-- bounded batches. Refuses while workers hold jobs unless forced.
--@include base
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  '1' to delete even when jobs are active
-- ARGV[4]  most jobs to delete in this call
-- Returns  {OK, deleted} when the queue is gone | {MORE, deleted} | {JOB_ACTIVE, reason}
if ARGV[3] ~= '1' and redis.call('ZCARD', K_ACTIVE) > 0 then
  return {JOB_ACTIVE, 'queue has active jobs; stop its workers or force'}
end
local budget = tonumber(ARGV[4])
local deleted = 0
local function take_list(key)
  local ids = redis.call('LRANGE', key, 0, budget - deleted - 1)
  if #ids > 0 then redis.call('LTRIM', key, #ids, -1) end
  return ids
end
local function take_zset(key)
  local ids = redis.call('ZRANGE', key, 0, budget - deleted - 1)
  if #ids > 0 then redis.call('ZREM', key, unpack(ids)) end
  return ids
end
for _, id in ipairs(take_list(K_WAIT)) do redis.call('DEL', job_key(id), log_key(id)); deleted = deleted + 1 end
for _, key in ipairs({K_PRIO, K_DELAYED, K_ACTIVE, K_COMPLETED, K_FAILED}) do
  if deleted < budget then
    for _, id in ipairs(take_zset(key)) do redis.call('DEL', job_key(id), log_key(id)); deleted = deleted + 1 end
  end
end
if deleted < budget then
  for _, id in ipairs(take_zset(K_DLQ)) do redis.call('DEL', dead_key(id)); deleted = deleted + 1 end
end
if deleted < budget then
  for _, minute in ipairs(take_zset(K_MINUTES)) do redis.call('DEL', BASE .. 'm:' .. minute); deleted = deleted + 1 end
end
if deleted >= budget then return {MORE, deleted} end
redis.call('DEL', K_META, K_EVENTS, K_WAIT, K_PRIO, K_DELAYED, K_ACTIVE, K_COMPLETED, K_FAILED, K_DLQ, K_MINUTES)
return {OK, deleted}
