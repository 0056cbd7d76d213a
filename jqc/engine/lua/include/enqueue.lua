-- Placing jobs into the waiting and delayed containers.
-- Priority 0 (the default) jobs sit in the list K_WAIT (LPUSH to add, RPOP to claim: FIFO; RPUSH for
-- LIFO and for jobs handed back, which run next), so the default path is O(1). Jobs of any other
-- priority sit in the sorted set K_PRIO, scored priority * 2^32 + slot, so lower priorities run
-- first: negative priorities (scores < 0) before the list, positive ones (scores >= 2^32) after it.
-- Within one priority the same order as the list: LIFO and handed-back jobs take slots below 2^31
-- (newest lowest, so they run next, newest first), other jobs slots from 2^31 up (FIFO).
-- A waiting job has no 's' field (absent means waiting), which keeps waiting jobs small.
-- These helpers change the record table `rec` in place; the caller saves it (save_job).
local PRIO_SHIFT = 4294967296
local PRIO_HALF = 2147483648

-- Put a job into its waiting container (a new job, whose record has no 's' yet).
local function push_waiting(id, priority, lifo, front)
  if priority ~= 0 then
    local seq = redis.call('HINCRBY', K_META, 'seq', 1) % PRIO_HALF
    if front or lifo then seq = PRIO_HALF - 1 - seq else seq = PRIO_HALF + seq end
    redis.call('ZADD', K_PRIO, priority * PRIO_SHIFT + seq, id)
  elseif front or lifo then
    redis.call('RPUSH', K_WAIT, id)
  else
    redis.call('LPUSH', K_WAIT, id)
  end
end

-- Make a stored job wait again (from delayed, active or failed): push it and clear its state,
-- reading its priority and LIFO flag from its record.
local function enqueue_stored(id, rec, front)
  push_waiting(id, tonumber(rec.p) or 0, rec.l == '1', front) -- a corrupt priority must not abort mid-move
  rec.s = nil
end

-- Index a job in the delayed set until `due` (ms), keeping the next-due hint meta.nd current.
local function park(id, due)
  redis.call('ZADD', K_DELAYED, due, id)
  local nd = redis.call('HGET', K_META, 'nd')
  if (not nd) or tonumber(nd) > due then redis.call('HSET', K_META, 'nd', due) end
end

-- Make a stored job delayed until `due` (ms).
local function schedule(id, rec, due)
  park(id, due)
  rec.s = 'd'
  rec.r = due
end

-- Recompute meta.nd from the head of the delayed set.
local function refresh_next_due()
  local head = redis.call('ZRANGE', K_DELAYED, 0, 0, 'WITHSCORES')
  if head[2] then redis.call('HSET', K_META, 'nd', head[2]) else redis.call('HDEL', K_META, 'nd') end
end

-- Remove a job id from whichever waiting container holds it (state 'w').
local function unqueue_waiting(id)
  if redis.call('ZREM', K_PRIO, id) == 0 then redis.call('LREM', K_WAIT, 1, id) end
end
