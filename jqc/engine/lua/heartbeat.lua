-- heartbeat: register a live worker or refresh its record, or remove it when it stops cleanly.
-- Records live in a sorted set (member = worker id, score = last seen, caller's clock in ms) and
-- the hash K_WINFO (field = worker id, value = its packed record); nothing relies on server-side
-- expiry. Each beat also deletes a bounded number of records last seen before a cutoff (workers
-- that died without saying so).
--@include base
--@keys workers winfo
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  worker id
-- ARGV[4]  prune records last seen before this time (ms)
-- ARGV[5..] field, value pairs of the worker's record (name, host, pid, ...); none = unregister
-- Returns  {OK, records pruned}
local PRUNE_BATCH = 100
local id = ARGV[3]
if #ARGV < 5 then
  redis.call('ZREM', K_WORKERS, id)
  redis.call('HDEL', K_WINFO, id)
  return {OK, 0}
end
redis.call('ZADD', K_WORKERS, NOW, id)
local rec = decode(redis.call('HGET', K_WINFO, id))
for i = 5, #ARGV - 1, 2 do rec[ARGV[i]] = ARGV[i + 1] end
rec.seen = NOW
redis.call('HSET', K_WINFO, id, encode(rec))
local pruned = 0
local old = redis.call('ZRANGEBYSCORE', K_WORKERS, '-inf', '(' .. ARGV[4], 'LIMIT', 0, PRUNE_BATCH)
for _, w in ipairs(old) do
  redis.call('ZREM', K_WORKERS, w)
  redis.call('HDEL', K_WINFO, w)
  pruned = pruned + 1
end
return {OK, pruned}
