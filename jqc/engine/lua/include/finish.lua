-- What happens when a job leaves the active set for good: metrics, retention, dead letters.
local TRIM_BATCH = 100
local LOG2 = math.log(2)

-- Log-scaled histogram bucket: 0 for < 1 ms, else floor(4 * log2(ms)) + 1 (quarter-octave wide).
local function bucket(ms)
  if ms < 1 then return 0 end
  return math.floor(math.log(ms) / LOG2 * 4) + 1
end

-- Count one outcome (c = completed, f = failed for good, x = failed attempt that will retry) in the
-- per-minute hash, with the wait and run times in log-scaled buckets. Old minutes are trimmed, a few
-- at a time, whenever a new minute starts; meta.mr holds how many minutes to keep (default 1440).
local function record_metrics(kind, wait_ms, run_ms)
  local minute = math.floor(NOW / 60000)
  local mk = BASE .. 'm:' .. minute
  redis.call('HINCRBY', mk, kind, 1)
  if wait_ms then redis.call('HINCRBY', mk, 'w' .. bucket(wait_ms), 1) end
  if run_ms then redis.call('HINCRBY', mk, 'r' .. bucket(run_ms), 1) end
  if redis.call('ZADD', K_MINUTES, 'NX', minute, minute) == 1 then
    local keep = tonumber(redis.call('HGET', K_META, 'mr') or 1440)
    local old = redis.call('ZRANGE', K_MINUTES, 0, 9, 'WITHSCORES')
    for i = 1, #old, 2 do
      if tonumber(old[i + 1]) > minute - keep then break end
      redis.call('DEL', BASE .. 'm:' .. old[i])
      redis.call('ZREM', K_MINUTES, old[i])
    end
  end
end

local function drop_job(zkey, id)
  redis.call('ZREM', zkey, id)
  redis.call('DEL', job_key(id), log_key(id))
end

-- File a finished job in `zkey` (completed or failed) scored by finish time, then apply its
-- retention: keep-count `kc` (0 = keep none) and keep-age `ka` in ms; absent = keep all.
-- Trims at most TRIM_BATCH old jobs per call, so the work per call stays bounded.
local function retire(zkey, id, kc, ka)
  kc = tonumber(kc)
  ka = tonumber(ka)
  if kc == 0 or ka == 0 then
    redis.call('DEL', job_key(id), log_key(id))
    return
  end
  redis.call('ZADD', zkey, NOW, id)
  if ka then
    local old = redis.call('ZRANGE', zkey, 0, TRIM_BATCH - 1, 'WITHSCORES')
    for i = 1, #old, 2 do
      if tonumber(old[i + 1]) >= NOW - ka then break end
      drop_job(zkey, old[i])
    end
  end
  if kc then
    local excess = redis.call('ZCARD', zkey) - kc
    if excess > 0 then
      for _, old_id in ipairs(redis.call('ZRANGE', zkey, 0, math.min(excess, TRIM_BATCH) - 1)) do
        drop_job(zkey, old_id)
      end
    end
  end
end

-- Copy a job that failed for good into its dead-letter record (the whole job hash, failure reason
-- fr and code fk included, plus dat = dead-lettered at, dw = last worker) and index it in K_DLQ by time. meta.dm caps the DLQ size.
local function dead_letter(id, worker)
  local dk = dead_key(id)
  redis.call('DEL', dk)
  redis.call('HSET', dk, unpack(redis.call('HGETALL', job_key(id))))
  redis.call('HSET', dk, 'dat', NOW, 'dw', worker)
  redis.call('ZADD', K_DLQ, NOW, id)
  local cap = tonumber(redis.call('HGET', K_META, 'dm'))
  if cap then
    local excess = redis.call('ZCARD', K_DLQ) - cap
    if excess > 0 then
      for _, old_id in ipairs(redis.call('ZRANGE', K_DLQ, 0, math.min(excess, TRIM_BATCH) - 1)) do
        redis.call('ZREM', K_DLQ, old_id)
        redis.call('DEL', dead_key(old_id))
      end
    end
  end
end

-- A job fails for good: mark it, dead-letter it, file it under failed with its retention.
-- `reason` is the message, `code` its stable failure code (jqc.FailureCode: error, timeout,
-- unrecoverable, stalled, corrupt); fc and fa are the job's failed-retention count and age.
local function fail_for_good(id, worker, reason, code, fc, fa)
  local jk = job_key(id)
  redis.call('HSET', jk, 's', 'f', 'fo', NOW, 'fr', reason, 'fk', code)
  dead_letter(id, worker)
  retire(K_FAILED, id, fc, fa)
  emit('failed', id, 'reason', reason, 'code', code)
end

-- A run of a job that cancel.lua marked (cx = reason, cy = '1' if it may retry) ends, however its
-- handler ended: it counts as a failed attempt and is retried after `delay` ms while attempts
-- remain if the canceller allowed it (the mark is cleared), else it fails for good with code
-- 'cancelled'. The caller has taken it out of the active set. `keep` (or nil) is the worker's
-- failed-retention {count, age ms} used instead of the job's. Returns 'retry' or 'failed'.
local function end_cancelled(id, worker, wait_ms, run_ms, delay, keep)
  local jk = job_key(id)
  local f = redis.call('HMGET', jk, 'cx', 'cy', 'a', 'fc', 'fa')
  local made = (tonumber(redis.call('HGET', jk, 'am')) or 0) + 1
  local reason = 'cancelled: ' .. f[1]
  redis.call('HSET', jk, 'am', made)
  if f[2] == '1' and made < tonumber(f[3] or 1) then
    record_metrics('x', wait_ms, run_ms)
    redis.call('HDEL', jk, 'cx', 'cy')
    redis.call('HSET', jk, 'fr', reason, 'fk', 'cancelled')
    if delay > 0 then
      schedule(id, NOW + delay)
    else
      redis.call('HSET', jk, 'r', NOW)
      enqueue_stored(id, false)
    end
    emit('retrying', id, 'attempt', made, 'delay', delay, 'reason', reason)
    return 'retry'
  end
  record_metrics('f', wait_ms, run_ms)
  if keep then
    fail_for_good(id, worker or '-', reason, 'cancelled', keep[1], keep[2])
  else
    fail_for_good(id, worker or '-', reason, 'cancelled', f[4], f[5])
  end
  return 'failed'
end
