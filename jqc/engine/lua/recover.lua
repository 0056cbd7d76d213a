-- recover: find active jobs whose lock deadline has passed (their worker died, hung or lost the
-- network), revoke their tokens, and put them back to waiting at the head of their priority with
-- their stall count raised, or fail them for good once the count passes the maximum.
--@include base, enqueue, finish
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  most jobs to examine in this call
-- ARGV[4]  maximum stall count when the queue sets none (meta.ms)
-- Returns  {OK, {recovered ids}, {failed ids}} or {MORE, ...same} when the limit cut the work short
local limit = tonumber(ARGV[3])
local max_stalls = tonumber(redis.call('HGET', K_META, 'ms') or ARGV[4])
local items = redis.call('ZRANGE', K_ACTIVE, 0, limit - 1, 'WITHSCORES')
local recovered, failed = {}, {}
local expired = 0
for i = 1, #items, 2 do
  if tonumber(items[i + 1]) > NOW then break end
  expired = expired + 1
  local id = items[i]
  local jk = job_key(id)
  redis.call('ZREM', K_ACTIVE, id)
  local f = redis.call('HMGET', jk, 's', 'w', 'fc', 'fa')
  if not f[1] then
    emit('orphan', id)
  else
    -- Not HINCRBY: a corrupt count would error after the ZREM above and orphan the job.
    local stalls = (tonumber(redis.call('HGET', jk, 'sc')) or 0) + 1
    redis.call('HSET', jk, 'sc', stalls)
    emit('stalled', id, 'w', f[2] or '', 'count', stalls)
    if stalls > max_stalls then
      record_metrics('f', false, false)
      fail_for_good(id, f[2] or '', 'job stalled ' .. stalls .. ' times (allowed ' .. max_stalls .. ')',
        'stalled', f[3], f[4])
      failed[#failed + 1] = id
    else
      redis.call('HSET', jk, 'r', NOW)
      enqueue_stored(id, true)
      emit('waiting', id)
      recovered[#recovered + 1] = id
    end
  end
end
if expired == limit then return {MORE, recovered, failed} end
return {OK, recovered, failed}
