-- What happens when a job leaves the active set for good: metrics, retention, dead letters.
local TRIM_BATCH = 100
local LOG2 = math.log(2)
local MAX_BUCKET = 160 -- 2^39.75 ms, about 28 years: longer durations count in this bucket

-- Log-scaled histogram bucket: 0 for < 1 ms, else floor(4 * log2(ms)) + 1 (quarter-octave wide).
local function bucket(ms)
  if ms < 1 then return 0 end
  return math.min(math.floor(math.log(ms) / LOG2 * 4) + 1, MAX_BUCKET)
end

-- Every counter field one minute can have in K_METRICS (to delete a minute without listing it).
local function minute_fields(minute)
  local p = minute .. ':'
  local names = {p .. 'c', p .. 'f', p .. 'x'}
  for b = 0, MAX_BUCKET do
    names[#names + 1] = p .. 'w' .. b
    names[#names + 1] = p .. 'r' .. b
  end
  return names
end

-- Count one outcome (c = completed, f = failed for good, x = failed attempt that will retry) in
-- the queue's metrics hash (fields <minute>:<counter>), with the wait and run times in log-scaled
-- buckets. Old minutes are trimmed, a few at a time, whenever a new minute starts; meta.mr holds
-- how many minutes to keep (default 1440).
local function record_metrics(kind, wait_ms, run_ms)
  local minute = math.floor(NOW / 60000)
  local p = string.format('%d', minute) .. ':'
  redis.call('HINCRBY', K_METRICS, p .. kind, 1)
  if wait_ms then redis.call('HINCRBY', K_METRICS, p .. 'w' .. bucket(wait_ms), 1) end
  if run_ms then redis.call('HINCRBY', K_METRICS, p .. 'r' .. bucket(run_ms), 1) end
  if redis.call('ZADD', K_MINUTES, 'NX', minute, minute) == 1 then
    local keep = tonumber(redis.call('HGET', K_META, 'mr') or 1440)
    local old = redis.call('ZRANGE', K_MINUTES, 0, 9, 'WITHSCORES')
    for i = 1, #old, 2 do
      if tonumber(old[i + 1]) > minute - keep then break end
      redis.call('HDEL', K_METRICS, unpack(minute_fields(old[i])))
      redis.call('ZREM', K_MINUTES, old[i])
    end
  end
end

local function drop_job(zkey, id)
  redis.call('ZREM', zkey, id)
  redis.call('HDEL', K_JOBS, id)
  redis.call('HDEL', K_LOGS, id)
end

-- File a finished job (`text`: its packed record as it is to be stored) in `zkey` (completed or
-- failed) scored by finish time, then apply its retention: keep-count `kc` (0 = keep none) and
-- keep-age `ka` in ms; absent = keep all. Trims at most TRIM_BATCH old jobs per call, so the work
-- per call stays bounded.
local function retire(zkey, id, text, kc, ka)
  kc = tonumber(kc)
  ka = tonumber(ka)
  if kc == 0 or ka == 0 then
    redis.call('HDEL', K_JOBS, id)
    redis.call('HDEL', K_LOGS, id)
    return
  end
  redis.call('HSET', K_JOBS, id, text)
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

-- Copy a job that failed for good into its dead-letter record (field <id> of K_DEAD: the whole job
-- record, failure reason fr and code fk included, plus dat = dead-lettered at, dw = last worker) and
-- index it in K_DLQ by time. meta.dm caps the DLQ size.
local function dead_letter(id, rec, worker)
  local saved_dat, saved_dw = rec.dat, rec.dw
  rec.dat, rec.dw = NOW, worker
  redis.call('HSET', K_DEAD, id, encode(rec))
  rec.dat, rec.dw = saved_dat, saved_dw
  redis.call('ZADD', K_DLQ, NOW, id)
  local cap = tonumber(redis.call('HGET', K_META, 'dm'))
  if cap then
    local excess = redis.call('ZCARD', K_DLQ) - cap
    if excess > 0 then
      for _, old_id in ipairs(redis.call('ZRANGE', K_DLQ, 0, math.min(excess, TRIM_BATCH) - 1)) do
        redis.call('ZREM', K_DLQ, old_id)
        redis.call('HDEL', K_DEAD, old_id)
      end
    end
  end
end

-- A job fails for good: mark it, dead-letter it, file it under failed with its retention.
-- `reason` is the message, `code` its stable failure code (jqc.FailureCode: error, timeout,
-- unrecoverable, stalled, corrupt, cancelled); the record's fc and fa are its failed-retention
-- count and age, unless `keep` (the worker's {count, age ms}) is given.
local function fail_for_good(id, rec, worker, reason, code, keep)
  rec.s, rec.fo, rec.fr, rec.fk = 'f', NOW, reason, code
  dead_letter(id, rec, worker)
  local fc, fa = rec.fc, rec.fa
  if keep then fc, fa = keep[1], keep[2] end
  retire(K_FAILED, id, encode(rec), fc, fa)
  emit('failed', id, 'reason', reason, 'code', code)
end
