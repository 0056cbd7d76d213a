-- schedule_fire: fire due ticks of one schedule: move its next tick on and add one job per fired
-- tick, in one step, only if the schedule still stands where the caller read it (compare-and-set
-- on its revision, next tick and last job). A second driver that read the same state changes
-- nothing; a tick whose job id exists already (it was fired before) adds nothing.
--@include base, job, enqueue
--@keys meta wait prio events schedules record jobs
-- KEYS     as --@keys names them; record = the schedule's record (hash P:{Q}:sc:<name>)
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  schedule name     ARGV[4] revision read   ARGV[5] next tick read (ms)
-- ARGV[6]  last job id read ('' for none)   ARGV[7] next tick after this pass (ms, '' for none)
-- ARGV[8]  '1' to skip ticks while the last job waits or runs (overlap skip), '' to allow
-- ARGV[9]  ticks the missed policy skipped (counted only)   ARGV[10] job priority   ARGV[11] LIFO ('1'/'')
-- ARGV[12] number of ticks N, then N pairs of tick (ms), job id; then the job record's field pairs
--          (name, data, options; the creation time is added here)
-- Returns  {OK, 1, {fired job ids}, skipped for overlap, already fired} when applied;
--          {OK, 0, {}, 0, 0} when the schedule is gone or moved on since the caller read it
--          | {LAYOUT_MISMATCH, reason}
local bad = layout_error(redis.call('HGET', K_META, 'v'))
if bad then return bad end
local cur = redis.call('HMGET', K_RECORD, 'rev', 'nx', 'lj', 'lt')
if (not cur[1]) or cur[1] ~= ARGV[4] or cur[2] ~= ARGV[5] or (cur[3] or '') ~= ARGV[6] then
  return {OK, 0, {}, 0, 0}
end
local name, skip_overlap = ARGV[3], ARGV[8] == '1'
local priority, lifo = tonumber(ARGV[10]), ARGV[11] == '1'
local n = tonumber(ARGV[12])
local fields = {}
for i = 13 + 2 * n, #ARGV - 1, 2 do fields[ARGV[i]] = ARGV[i + 1] end
fields.t = NOW
local record = encode(fields)
local last_tick = tonumber(cur[4] or '-1')
local last_id = ARGV[6]
local busy = false
if skip_overlap and last_id ~= '' then
  local last = load_job(last_id)
  busy = last ~= nil and (last.s == 'a' or last.s == 'd' or last.s == nil)
end
local fired, overlapped, repeated = {}, 0, 0
for i = 1, n do
  local tick, id = tonumber(ARGV[11 + 2 * i]), ARGV[12 + 2 * i]
  if tick <= last_tick or redis.call('HEXISTS', K_JOBS, id) == 1 then
    repeated = repeated + 1
  elseif busy then
    overlapped = overlapped + 1
  else
    redis.call('HSET', K_JOBS, id, record)
    push_waiting(id, priority, lifo, false)
    emit('added', id, 's', name)
    fired[#fired + 1] = id
    last_tick, last_id = tick, id
    busy = skip_overlap
  end
end
if ARGV[7] == '' then
  redis.call('HDEL', K_RECORD, 'nx')
  redis.call('ZADD', K_SCHEDULES, '+inf', name) -- listed still, never due
else
  redis.call('HSET', K_RECORD, 'nx', ARGV[7])
  redis.call('ZADD', K_SCHEDULES, tonumber(ARGV[7]), name)
end
redis.call('HSET', K_RECORD, 'lf', NOW)
if #fired > 0 then redis.call('HSET', K_RECORD, 'lt', last_tick, 'lj', last_id) end
redis.call('HINCRBY', K_RECORD, 'fc', #fired)
redis.call('HINCRBY', K_RECORD, 'sm', tonumber(ARGV[9]))
redis.call('HINCRBY', K_RECORD, 'so', overlapped)
return {OK, 1, fired, overlapped, repeated}
