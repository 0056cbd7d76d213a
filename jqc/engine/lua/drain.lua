-- drain: delete waiting jobs (and delayed ones if asked), a bounded number per call.
--@include base, enqueue
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  '1' to delete delayed jobs too
-- ARGV[4]  most jobs to delete in this call
-- Returns  {OK, deleted} or {MORE, deleted} when jobs remain
local budget = tonumber(ARGV[4])
local deleted = 0
local function delete(id)
  redis.call('DEL', job_key(id), log_key(id))
  deleted = deleted + 1
end
local ids = redis.call('LRANGE', K_WAIT, -budget, -1)
if #ids > 0 then redis.call('LTRIM', K_WAIT, 0, -#ids - 1) end
for _, id in ipairs(ids) do delete(id) end
for _, id in ipairs(redis.call('ZRANGE', K_PRIO, 0, budget - deleted - 1)) do
  redis.call('ZREM', K_PRIO, id); delete(id)
end
if ARGV[3] == '1' and deleted < budget then
  for _, id in ipairs(redis.call('ZRANGE', K_DELAYED, 0, budget - deleted - 1)) do
    redis.call('ZREM', K_DELAYED, id); delete(id)
  end
  refresh_next_due()
end
local left = redis.call('LLEN', K_WAIT) + redis.call('ZCARD', K_PRIO)
if ARGV[3] == '1' then left = left + redis.call('ZCARD', K_DELAYED) end
if left > 0 then return {MORE, deleted} end
emit('drained', '')
return {OK, deleted}
