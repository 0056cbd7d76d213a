-- list: one page of the jobs in a state, in the order they will run or finished (read only).
--@include base
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms, unused)  ARGV[2] events cap (unused)
-- ARGV[3]  state: waiting | delayed | active | completed | failed | dead
-- ARGV[4]  offset            ARGV[5] page size
-- Returns  {OK, total, id, fields, ...} | {BAD_ARGUMENT, reason}
-- Waiting jobs come in claim order (negative priorities, the default 0, positive ones), delayed by due time, active by lock deadline, completed,
-- failed and dead newest first. Dead jobs' fields are their dead-letter records.
local state, offset, size = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local ids, total = {}, 0
local key_of = job_key
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
else
  local zkeys = {delayed = K_DELAYED, active = K_ACTIVE, completed = K_COMPLETED, failed = K_FAILED, dead = K_DLQ}
  local zkey = zkeys[state]
  if not zkey then return {BAD_ARGUMENT, 'unknown state ' .. state} end
  total = redis.call('ZCARD', zkey)
  if state == 'completed' or state == 'failed' or state == 'dead' then
    ids = redis.call('ZRANGE', zkey, offset, offset + size - 1, 'REV')
  else
    ids = redis.call('ZRANGE', zkey, offset, offset + size - 1)
  end
  if state == 'dead' then key_of = dead_key end
end
local out = {OK, total}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', key_of(id))
end
return out
