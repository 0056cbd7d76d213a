-- Placing jobs into the waiting and delayed containers.
-- Priority 0 jobs sit in the list K_WAIT (LPUSH to add, RPOP to claim: FIFO; RPUSH for LIFO and for
-- jobs handed back, which run next). Priority > 0 jobs sit in the sorted set K_PRIO, scored
-- priority * 2^32 + sequence, so lower priorities run first and FIFO holds within one priority.
local PRIO_SHIFT = 4294967296

local function enqueue(id, priority, lifo, front)
  if priority > 0 then
    local seq = 0
    if not front then
      seq = redis.call('HINCRBY', K_META, 'seq', 1) % PRIO_SHIFT
      if lifo then seq = PRIO_SHIFT - 1 - seq end
    end
    redis.call('ZADD', K_PRIO, priority * PRIO_SHIFT + seq, id)
  elseif front or lifo then
    redis.call('RPUSH', K_WAIT, id)
  else
    redis.call('LPUSH', K_WAIT, id)
  end
  redis.call('HSET', job_key(id), 's', 'w')
end

-- Enqueue a stored job, reading its priority and LIFO flag from its hash.
local function enqueue_stored(id, front)
  local f = redis.call('HMGET', job_key(id), 'p', 'l')
  enqueue(id, tonumber(f[1] or 0), f[2] == '1', front)
end

-- Park a job in the delayed set until `due` (ms); keeps the queue's next-due hint in meta.nd.
local function schedule(id, due)
  redis.call('ZADD', K_DELAYED, due, id)
  redis.call('HSET', job_key(id), 's', 'd', 'r', due)
  local nd = redis.call('HGET', K_META, 'nd')
  if (not nd) or tonumber(nd) > due then redis.call('HSET', K_META, 'nd', due) end
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
