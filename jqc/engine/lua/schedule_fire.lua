-- schedule_fire: fire due ticks of one schedule: move its next tick on and add one job per fired
-- tick, in one step, only if the schedule still stands where the caller read it (compare-and-set
-- on its revision, next tick and last job). A second driver that read the same state changes
-- nothing; a tick whose job id exists already (it was fired before) adds nothing.
--@include base, enqueue
-- KEYS[1]  queue key prefix   KEYS[2] meta   KEYS[3] wait   KEYS[4] prio   KEYS[5] events
-- KEYS[6]  schedules (sorted set)   KEYS[7] the schedule's record (hash)
-- KEYS[8]  the job of the last fired tick (its hash; the record itself when there is none)
-- KEYS[9..] the job of each tick to fire, in the order of the ticks below
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  schedule name     ARGV[4] revision read   ARGV[5] next tick read (ms)
-- ARGV[6]  last job id read ('' for none)   ARGV[7] next tick after this pass (ms, '' for none)
-- ARGV[8]  '1' to skip ticks while the last job waits or runs (overlap skip), '' to allow
-- ARGV[9]  ticks the missed policy skipped (counted only)   ARGV[10] job priority   ARGV[11] LIFO ('1'/'')
-- ARGV[12] number of ticks N, then N pairs of tick (ms), job id; then the job hash's field pairs
--          (name, data, options; the creation time is added here)
-- Returns  {OK, 1, {fired job ids}, skipped for overlap, already fired} when applied;
--          {OK, 0, {}, 0, 0} when the schedule is gone or moved on since the caller read it
local rec = KEYS[7]
local cur = redis.call('HMGET', rec, 'rev', 'nx', 'lj', 'lt')
if (not cur[1]) or cur[1] ~= ARGV[4] or cur[2] ~= ARGV[5] or (cur[3] or '') ~= ARGV[6] then
  return {OK, 0, {}, 0, 0}
end
local name, skip_overlap = ARGV[3], ARGV[8] == '1'
local priority, lifo = tonumber(ARGV[10]), ARGV[11] == '1'
local n = tonumber(ARGV[12])
local fields = {}
for i = 13 + 2 * n, #ARGV do fields[#fields + 1] = ARGV[i] end
fields[#fields + 1] = 't'
fields[#fields + 1] = NOW
local last_tick = tonumber(cur[4] or '-1')
local last_id = ARGV[6]
local busy = false
if skip_overlap and last_id ~= '' then
  local s = redis.call('HGET', KEYS[8], 's')
  busy = (s == 'a' or s == 'd') or (s == false and redis.call('EXISTS', KEYS[8]) == 1)
end
local fired, overlapped, repeated = {}, 0, 0
for i = 1, n do
  local tick, id, key = tonumber(ARGV[11 + 2 * i]), ARGV[12 + 2 * i], KEYS[8 + i]
  if tick <= last_tick or redis.call('EXISTS', key) == 1 then
    repeated = repeated + 1
  elseif busy then
    overlapped = overlapped + 1
  else
    redis.call('HSET', key, unpack(fields))
    push_waiting(id, priority, lifo, false)
    emit('added', id, 's', name)
    fired[#fired + 1] = id
    last_tick, last_id = tick, id
    busy = skip_overlap
  end
end
if ARGV[7] == '' then
  redis.call('HDEL', rec, 'nx')
  redis.call('ZADD', KEYS[6], '+inf', name) -- listed still, never due
else
  redis.call('HSET', rec, 'nx', ARGV[7])
  redis.call('ZADD', KEYS[6], tonumber(ARGV[7]), name)
end
redis.call('HSET', rec, 'lf', NOW)
if #fired > 0 then redis.call('HSET', rec, 'lt', last_tick, 'lj', last_id) end
redis.call('HINCRBY', rec, 'fc', #fired)
redis.call('HINCRBY', rec, 'sm', tonumber(ARGV[9]))
redis.call('HINCRBY', rec, 'so', overlapped)
return {OK, 1, fired, overlapped, repeated}
