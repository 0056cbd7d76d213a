-- drain: delete waiting jobs (and delayed ones if asked), a bounded number per call.
--@include base, enqueue
--@keys meta wait prio delayed events jobs logs
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  '1' to delete delayed jobs too
-- ARGV[4]  most jobs to delete in this call
-- Returns  {OK, deleted} or {MORE, deleted} when jobs remain | {LAYOUT_MISMATCH, reason}
local bad = layout_error(redis.call('HGET', K_META, 'v'))
if bad then return bad end
local budget = tonumber(ARGV[4])
local deleted = 0
local function delete(ids)
  if #ids == 0 then return end
  redis.call('HDEL', K_JOBS, unpack(ids))
  redis.call('HDEL', K_LOGS, unpack(ids))
  deleted = deleted + #ids
end
local ids = redis.call('LRANGE', K_WAIT, -budget, -1)
if #ids > 0 then redis.call('LTRIM', K_WAIT, 0, -#ids - 1) end
delete(ids)
if deleted < budget then
  ids = redis.call('ZRANGE', K_PRIO, 0, budget - deleted - 1)
  if #ids > 0 then redis.call('ZREM', K_PRIO, unpack(ids)) end
  delete(ids)
end
if ARGV[3] == '1' and deleted < budget then
  ids = redis.call('ZRANGE', K_DELAYED, 0, budget - deleted - 1)
  if #ids > 0 then redis.call('ZREM', K_DELAYED, unpack(ids)) end
  delete(ids)
  refresh_next_due()
end
local left = redis.call('LLEN', K_WAIT) + redis.call('ZCARD', K_PRIO)
if ARGV[3] == '1' then left = left + redis.call('ZCARD', K_DELAYED) end
if left > 0 then return {MORE, deleted} end
emit('drained', '')
return {OK, deleted}
