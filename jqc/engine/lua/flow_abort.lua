-- flow_abort: take back a flow creation refused half-way (a queue of the flow refused the writer):
-- delete the listed nodes while they are still held (none of them can have run), and, on the
-- root's queue, the intent, but only while it is unmarked (after the mark, creation rolls forward).
--@include base, job
--@keys events jobs parked flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  root id on the root's queue, else ''
-- ARGV[4]  number of ids N, then N job ids
-- Returns  {OK, how many nodes were deleted} | {WRONG_STATE, reason} (the intent is marked: no abort)
local root = ARGV[3]
if root ~= '' then
  local text = redis.call('HGET', K_FLOWS, 'i:' .. root)
  if text and decode(text).st == 'r' then return {WRONG_STATE, 'flow ' .. root .. ' is created already'} end
  redis.call('HDEL', K_FLOWS, 'i:' .. root)
end
local deleted = 0
for i = 1, tonumber(ARGV[4]) do
  local id = ARGV[4 + i]
  local rec = load_job(id)
  if rec and rec.s == 'p' and rec.hd then
    redis.call('HDEL', K_JOBS, id)
    redis.call('ZREM', K_PARKED, id)
    emit('removed', id, 'flow', 'aborted')
    deleted = deleted + 1
  end
end
return {OK, deleted}
