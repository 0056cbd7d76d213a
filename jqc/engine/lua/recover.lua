-- recover: find active jobs whose lock deadline has passed (their worker died, hung or lost the
-- network), revoke their tokens, and put them back to waiting at the head of their priority with
-- their stall count raised, or fail them for good once the count passes the maximum.
--@include base, job, enqueue, flow, finish
--@keys meta wait prio active failed dlq events minutes jobs logs dead metrics flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  most jobs to examine in this call
-- ARGV[4]  maximum stall count when the queue sets none (meta.ms)
-- Returns  {OK, {recovered ids}, {failed ids}} or {MORE, ...same} when the limit cut the work short
--          | {LAYOUT_MISMATCH, reason}
local limit = tonumber(ARGV[3])
local m = redis.call('HMGET', K_META, 'ms', 'v')
if m[2] ~= LAYOUT then
  local bad = layout_error(m[2])
  if bad then return bad end
end
local max_stalls = tonumber(m[1] or ARGV[4])
local items = redis.call('ZRANGE', K_ACTIVE, 0, limit - 1, 'WITHSCORES')
local recovered, failed = {}, {}
local expired = 0
for i = 1, #items, 2 do
  if tonumber(items[i + 1]) > NOW then break end
  expired = expired + 1
  local id = items[i]
  redis.call('ZREM', K_ACTIVE, id)
  local rec = load_job(id)
  if not rec or not rec.s then
    emit('orphan', id)
  else
    -- Not a plain increment: a corrupt count counts as 0 rather than erroring after the ZREM above.
    local stalls = (tonumber(rec.sc) or 0) + 1
    rec.sc = stalls
    emit('stalled', id, 'w', rec.w or '', 'count', stalls)
    if stalls > max_stalls then
      record_metrics('f', false, false)
      local reason = 'job stalled ' .. stalls .. ' times (allowed ' .. max_stalls .. ')'
      fail_for_good(id, rec, rec.w or '', reason, 'stalled')
      flow_notify(id, rec, 'f', reason) -- flows: tell the parent (include/flow.lua)
      failed[#failed + 1] = id
    else
      rec.r = NOW
      enqueue_stored(id, rec, true)
      save_job(id, rec)
      emit('waiting', id)
      recovered[#recovered + 1] = id
    end
  end
end
if expired == limit then return {MORE, recovered, failed} end
return {OK, recovered, failed}
