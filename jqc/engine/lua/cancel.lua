-- cancel: stop a job. One that has not started (waiting or delayed) is removed; one a worker holds
-- is marked (fields cx = reason, cy = '1' if it may be retried): the holder learns of the mark from
-- its next lock renewal (extend.lua), and the job's next report ends it as a cancelled failure.
-- Flows (docs/workflows.md): a flow child that has not started fails for good instead (code
-- cancelled, dead-lettered, its outcome left in the outbox for its parent), so its parent's
-- on_failure policy applies as to any failed child; a job in waiting-children (a parent waiting
-- for its children, or a node of a flow being created) is refused: remove its flow instead.
--@include base, job, enqueue, flow, finish
--@keys meta wait prio delayed failed dlq events jobs logs dead flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] reason
-- ARGV[5]  '1' to let the holder's failure be retried if attempts remain, '0' to fail it for good
-- Returns  {OK, 'removed'|'marked'|'failed'} ('failed': a flow child, see above) | {JOB_NOT_FOUND, reason}
--          | {WRONG_STATE, reason} (it finished, or it waits for children)
--          | {LAYOUT_MISMATCH, reason}
local id = ARGV[3]
local rec, stored = load_job(id)
if not rec then
  return layout_error(redis.call('HGET', K_META, 'v')) or {JOB_NOT_FOUND, 'no job ' .. id}
end
local state = state_of(rec)
if state == 'c' or state == 'f' then
  return {WRONG_STATE, 'job ' .. id .. ' has finished: only a waiting, delayed or active job can be cancelled'}
end
if state == 'a' then
  redis.call('HSET', K_JOBS, id, stored .. field('cx', ARGV[4]) .. field('cy', ARGV[5]))
  emit('cancelling', id, 'reason', ARGV[4])
  return {OK, 'marked'}
end
if state == 'p' then
  return {WRONG_STATE, 'job ' .. id .. ' waits for its flow children: remove the flow (remove with children) instead'}
end
if state == 'w' then unqueue_waiting(id) else redis.call('ZREM', K_DELAYED, id); refresh_next_due() end
if rec.pi then -- a flow child: its parent waits for its outcome, so it fails rather than vanishing
  local reason = 'cancelled: ' .. ARGV[4]
  fail_for_good(id, rec, '-', reason, 'cancelled', nil)
  flow_notify(id, rec, 'f', reason)
  return {OK, 'failed'}
end
redis.call('HDEL', K_JOBS, id)
redis.call('HDEL', K_LOGS, id)
emit('cancelled', id, 'reason', ARGV[4])
return {OK, 'removed'}
