-- list: one page of the jobs in a state, in the order they will run or finished (read only).
--@include base
--@keys meta wait prio delayed active completed failed dlq jobs dead parked
-- ARGV[1]  now (ms, unused)  ARGV[2] events cap (unused)
-- ARGV[3]  state: waiting | delayed | active | completed | failed | dead | waiting-children
-- ARGV[4]  offset            ARGV[5] page size
-- Returns  {OK, total, id, record, ...} (record: the packed job, false when it is gone) |
--          {BAD_ARGUMENT, reason} | {LAYOUT_MISMATCH, reason}
-- Waiting jobs come in claim order (negative priorities, the default 0, positive ones), delayed by
-- due time, active by lock deadline, completed, failed and dead newest first. Dead jobs' records are
-- their dead-letter records.
local bad = layout_error(redis.call('HGET', K_META, 'v'))
if bad then return bad end
local state, offset, size = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local ids, total = {}, 0
local function page_of(zkey, newest_first)
  total = redis.call('ZCARD', zkey)
  if newest_first then return redis.call('ZRANGE', zkey, offset, offset + size - 1, 'REV') end
  return redis.call('ZRANGE', zkey, offset, offset + size - 1)
end
if state == 'waiting' then
  -- Claim order: negative priorities (prio scores < 0), the default list, positive priorities.
  local urgent = redis.call('ZCOUNT', K_PRIO, '-inf', '(0')
  local n = redis.call('LLEN', K_WAIT)
  total = n + redis.call('ZCARD', K_PRIO)
  if offset < urgent then
    ids = redis.call('ZRANGE', K_PRIO, offset, math.min(offset + size, urgent) - 1)
  end
  local start = math.max(offset - urgent, 0)
  if #ids < size and start < n then
    local page = redis.call('LRANGE', K_WAIT, -(math.min(start + size - #ids, n)), -(start + 1))
    for i = #page, 1, -1 do ids[#ids + 1] = page[i] end
  end
  if #ids < size then
    local rank = urgent + math.max(offset - urgent - n, 0)
    for _, id in ipairs(redis.call('ZRANGE', K_PRIO, rank, rank + size - #ids - 1)) do ids[#ids + 1] = id end
  end
elseif state == 'delayed' then ids = page_of(K_DELAYED, false)
elseif state == 'active' then ids = page_of(K_ACTIVE, false)
elseif state == 'waiting-children' then ids = page_of(K_PARKED, false)
elseif state == 'completed' then ids = page_of(K_COMPLETED, true)
elseif state == 'failed' then ids = page_of(K_FAILED, true)
elseif state == 'dead' then ids = page_of(K_DLQ, true)
else return {BAD_ARGUMENT, 'unknown state ' .. state}
end
local out = {OK, total}
if #ids == 0 then return out end
local records
if state == 'dead' then records = redis.call('HMGET', K_DEAD, unpack(ids))
else records = redis.call('HMGET', K_JOBS, unpack(ids)) end
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = records[i]
end
return out
