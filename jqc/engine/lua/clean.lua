-- clean: delete jobs in one state older than a grace period, a bounded number per call.
--@include base, job, enqueue
--@keys meta wait prio delayed completed failed events jobs logs
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  state: completed | failed | delayed | waiting
-- ARGV[4]  grace (ms): only jobs finished (completed, failed) or created (delayed, waiting)
--          at or before now - grace are deleted (inclusive: grace 0 takes a job finished now)
-- ARGV[5]  most jobs to examine
-- Returns  {OK, {ids}} or {MORE, {ids}} when the limit cut the work short | {BAD_ARGUMENT, reason}
--          | {LAYOUT_MISMATCH, reason}
local bad = layout_error(redis.call('HGET', K_META, 'v'))
if bad then return bad end
local state, limit = ARGV[3], tonumber(ARGV[5])
local cutoff = NOW - tonumber(ARGV[4])
local removed = {}
local examined = 0
local function created_before(id)
  local rec = load_job(id)
  return rec and rec.t and tonumber(rec.t) <= cutoff
end
local function delete(id)
  redis.call('HDEL', K_JOBS, id)
  redis.call('HDEL', K_LOGS, id)
  removed[#removed + 1] = id
  emit('removed', id, 'cleaned', state)
end
if state == 'completed' or state == 'failed' then
  local items
  if state == 'failed' then
    items = redis.call('ZRANGE', K_FAILED, 0, limit - 1, 'WITHSCORES')
  else
    items = redis.call('ZRANGE', K_COMPLETED, 0, limit - 1, 'WITHSCORES')
  end
  for i = 1, #items, 2 do
    if tonumber(items[i + 1]) > cutoff then break end
    examined = examined + 1
    if state == 'failed' then redis.call('ZREM', K_FAILED, items[i]) else redis.call('ZREM', K_COMPLETED, items[i]) end
    delete(items[i])
  end
elseif state == 'delayed' then
  for _, id in ipairs(redis.call('ZRANGE', K_DELAYED, 0, limit - 1)) do
    examined = examined + 1
    if created_before(id) then redis.call('ZREM', K_DELAYED, id); delete(id) end
  end
  refresh_next_due()
elseif state == 'waiting' then
  local ids = redis.call('LRANGE', K_WAIT, -limit, -1)
  for _, id in ipairs(redis.call('ZRANGE', K_PRIO, 0, limit - #ids - 1)) do ids[#ids + 1] = id end
  for _, id in ipairs(ids) do
    examined = examined + 1
    if created_before(id) then unqueue_waiting(id); delete(id) end
  end
else
  return {BAD_ARGUMENT, 'cannot clean state ' .. state}
end
if examined >= limit then return {MORE, removed} end
return {OK, removed}
