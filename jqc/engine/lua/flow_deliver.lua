-- flow_deliver: record a child's outcome on its parent (the second step of a child's finish, see
-- include/flow.lua). The last pending child moves the parent from waiting-children to waiting; a
-- failed child whose policy is 'f' fails the parent for good (which tells the grandparent in turn);
-- a replayed child ('r') that had failed its parent brings the parent back to waiting-children.
-- Idempotent: an outcome the parent has already recorded changes nothing.
--@include base, job, enqueue, flow, finish
--@keys meta wait prio failed dlq events minutes jobs logs dead metrics parked flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  parent id         ARGV[4] child queue        ARGV[5] child id
-- ARGV[6]  outcome: c (completed) | f (failed for good) | r (replayed)
-- ARGV[7]  result JSON (c) or failure reason (f)
-- Returns  {OK, what}: what is 'waiting' (the parent now waits), 'failed' (the parent failed for
--          good), 'resumed' (it waits for its children again), 'recorded' or 'unchanged'
local pid, cq, cid, outcome, value = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local rec, letter = load_job(pid), false
if not rec then -- a parent its failed-retention deleted is rebuilt from its dead letter, if revived
  local text = redis.call('HGET', K_DEAD, pid)
  if not text then return {OK, 'unchanged'} end
  rec, letter = decode(text), true
  rec.dat, rec.dw = nil, nil
end
local kids = children_of(rec)
local kid
for _, k in ipairs(kids) do
  if k.q == cq and k.i == cid then kid = k end
end
if not kid then return {OK, 'unchanged'} end
local ckey = cq .. '/' .. cid

-- A parent that failed for good because of this child waits for its children again.
local function revive()
  if rec.s ~= 'f' or rec.fk ~= 'child' or rec.fx ~= ckey then return false end
  redis.call('ZREM', K_FAILED, pid)
  redis.call('ZREM', K_DLQ, pid)
  redis.call('HDEL', K_DEAD, pid)
  for _, name in ipairs({'fo', 'fr', 'fk', 'fx', 'tb'}) do rec[name] = nil end
  rec.s = 'p'
  redis.call('ZADD', K_PARKED, NOW, pid)
  emit('waiting-children', pid, 'resumed', ckey)
  return true
end

local what = 'recorded'
if outcome == 'r' then
  -- Only a parent still waiting, or one this child failed, waits for the replayed child again; a
  -- parent that moved on (it ran, the failure being ignored) keeps the outcome it ran with.
  if kid.s ~= 'f' then return {OK, 'unchanged'} end
  if rec.s ~= 'p' then
    if not revive() then return {OK, 'unchanged'} end
    what = 'resumed'
  end
  kid.s, kid.v = nil, nil
else
  if kid.s == outcome or (kid.s == 'c' and outcome == 'f') then return {OK, 'unchanged'} end
  if kid.s == 'f' and revive() then what = 'resumed' end -- replayed, and completed before 'r' arrived
  kid.s, kid.v = outcome, value
end
if letter and what ~= 'resumed' then return {OK, 'unchanged'} end
set_children(rec, kids)
if rec.s ~= 'p' then -- the parent moved on (failed, removed from the flow by hand): keep the outcome only
  save_job(pid, rec)
  return {OK, what}
end
-- Any child failed under the 'fail' policy (this one, or another one still failed when a replay
-- revived the parent) fails the parent for good.
local blocking
for _, k in ipairs(kids) do
  if k.s == 'f' and (k.p or 'f') == 'f' and not blocking then blocking = k end
end
if blocking then
  local bkey = blocking.q .. '/' .. blocking.i
  redis.call('ZREM', K_PARKED, pid)
  rec.hd, rec.fx = nil, bkey
  record_metrics('f', false, false)
  local reason = 'child ' .. bkey .. ' failed: ' .. (blocking.v or '')
  fail_for_good(pid, rec, '', reason, 'child')
  flow_notify(pid, rec, 'f', reason) -- the grandparent hears of it in turn
  return {OK, 'failed'}
end
if not rec.hd and pending_children(kids) == 0 then
  redis.call('ZREM', K_PARKED, pid)
  rec.r = NOW
  enqueue_stored(pid, rec, false)
  emit('waiting', pid)
  what = 'waiting'
end
save_job(pid, rec)
return {OK, what}
