-- Claiming: promote due delayed jobs, honour pause, the concurrency limit and the rate window, then
-- hand out up to `want` jobs, each under a fresh fencing token and a lock deadline. Everything a
-- claim reads is in keys it declares (the job records are fields of K_JOBS), so a claim never
-- mistakes a job whose key moved away in a cluster slot migration for a missing one.
local PROMOTE_BATCH = 100

-- Move delayed jobs whose time has come (at most PROMOTE_BATCH per call) to waiting.
local function promote_due(next_due)
  if (not next_due) or tonumber(next_due) > NOW then return end
  local items = redis.call('ZRANGE', K_DELAYED, 0, PROMOTE_BATCH - 1, 'WITHSCORES')
  for i = 1, #items, 2 do
    if tonumber(items[i + 1]) > NOW then break end
    local id = items[i]
    redis.call('ZREM', K_DELAYED, id)
    local rec = load_job(id)
    if rec then
      enqueue_stored(id, rec, false)
      save_job(id, rec)
    else
      push_waiting(id, 0, false, false) -- a record gone missing: the claim reports the orphan
    end
    emit('waiting', id)
  end
  refresh_next_due()
end

-- Returns {OK, lock_deadline, id, token, record, id, token, record, ...} (record: the packed job as
-- stored after the claim) or {EMPTY, next_due_ms or 0} | {PAUSED, 0} | {RATE_LIMITED, window_reopens_ms}
-- | {CONCURRENCY_LIMITED, 0} | {LAYOUT_MISMATCH, reason}.
local function claim(want, lock_ms, worker)
  local m = redis.call('HMGET', K_META, 'paused', 'nd', 'rlm', 'rlw', 'rls', 'rln', 'cc', 'v', 'rlu')
  if m[8] ~= LAYOUT then
    local bad = layout_error(m[8])
    if bad then return bad end
  end
  if m[1] == '1' then return {PAUSED, 0} end
  if m[9] and tonumber(m[9]) > NOW then return {RATE_LIMITED, tonumber(m[9])} end -- rate_limit.lua's hold
  promote_due(m[2])
  local room = want
  if m[7] then
    local free = tonumber(m[7]) - redis.call('ZCARD', K_ACTIVE)
    if free <= 0 then return {CONCURRENCY_LIMITED, 0} end
    if free < room then room = free end
  end
  local window, used
  if m[3] then
    local width = tonumber(m[4])
    window = NOW - (NOW % width)
    used = 0
    if tonumber(m[5]) == window then used = tonumber(m[6]) end
    local free = tonumber(m[3]) - used
    if free <= 0 then return {RATE_LIMITED, window + width} end
    if free < room then room = free end
  end

  -- Claim order: negative priorities (scores < 0), then the default list, then positive ones.
  -- The head of the prio set is read by rank (O(log n + room); ZRANGEBYSCORE with LIMIT is O(n) on
  -- the embedded backend), and an empty set costs O(1).
  local ids = {}
  local head = redis.call('ZRANGE', K_PRIO, 0, room - 1, 'WITHSCORES')
  for i = 1, #head, 2 do
    if tonumber(head[i + 1]) >= 0 then break end
    redis.call('ZREM', K_PRIO, head[i])
    ids[#ids + 1] = head[i]
  end
  local short = room - #ids
  if short == 1 then
    local id = redis.call('RPOP', K_WAIT)
    if id then ids[#ids + 1] = id end
  elseif short > 1 then
    for _, id in ipairs(redis.call('RPOP', K_WAIT, short) or {}) do ids[#ids + 1] = id end
  end
  if #ids < room then
    for _, id in ipairs(redis.call('ZRANGE', K_PRIO, 0, room - #ids - 1)) do
      redis.call('ZREM', K_PRIO, id)
      ids[#ids + 1] = id
    end
  end
  if #ids == 0 then
    return {EMPTY, tonumber(redis.call('HGET', K_META, 'nd')) or 0}
  end

  local deadline = NOW + lock_ms
  local out = {OK, deadline}
  for _, id in ipairs(ids) do
    local rec, stored = load_job(id)
    if not rec then
      emit('orphan', id)
    else
      local token = redis.call('HINCRBY', K_META, 'tok', 1)
      if token <= NOW * 1000 then
        -- Tokens never fall below now * 1000: a new (or obliterated and recreated) queue, and one
        -- whose counter went back with the writes a failover lost, never hand out a token again.
        token = NOW * 1000 + 1
        redis.call('HSET', K_META, 'tok', string.format('%d', token))
      end
      -- Count the run (every claim is one); the changed fields are appended (the last one counts).
      local text = stored .. field('s', 'a') .. field('k', token) .. field('ps', NOW) .. field('w', worker) ..
        field('rn', (tonumber(rec.rn) or 0) + 1)
      redis.call('HSET', K_JOBS, id, text)
      redis.call('ZADD', K_ACTIVE, deadline, id)
      emit('active', id, 'w', worker)
      out[#out + 1] = id
      out[#out + 1] = token
      out[#out + 1] = text
    end
  end
  if #out == 2 then return {EMPTY, 0} end
  if window then redis.call('HSET', K_META, 'rls', window, 'rln', used + (#out - 2) / 3) end
  return out
end
