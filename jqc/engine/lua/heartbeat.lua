-- heartbeat: register a live worker or refresh its record, or remove it when it stops cleanly.
-- Records live in a sorted set (member = worker id, score = last seen, caller's clock in ms) and
-- one hash per worker; nothing relies on server-side expiry. Each beat also deletes a bounded
-- number of records last seen before a cutoff (workers that died without saying so).
--@include base
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  worker id
-- ARGV[4]  prune records last seen before this time (ms)
-- ARGV[5..] field, value pairs of the worker's record (name, host, pid, ...); none = unregister
-- Returns  {OK, records pruned}
local K_WORKERS = BASE .. 'workers'
local PRUNE_BATCH = 100
local id = ARGV[3]
local function worker_key(w) return BASE .. 'worker:' .. w end
if #ARGV < 5 then
  redis.call('ZREM', K_WORKERS, id)
  redis.call('DEL', worker_key(id))
  return {OK, 0}
end
redis.call('ZADD', K_WORKERS, NOW, id)
redis.call('HSET', worker_key(id), 'seen', NOW, unpack(ARGV, 5))
local pruned = 0
local old = redis.call('ZRANGEBYSCORE', K_WORKERS, '-inf', '(' .. ARGV[4], 'LIMIT', 0, PRUNE_BATCH)
for _, w in ipairs(old) do
  redis.call('ZREM', K_WORKERS, w)
  redis.call('DEL', worker_key(w))
  pruned = pruned + 1
end
return {OK, pruned}
