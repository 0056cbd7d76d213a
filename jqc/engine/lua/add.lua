-- add: create one or many jobs atomically (add and add_bulk use this one script).
--@include base, enqueue
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  number of jobs N, then N groups of 12 values:
--          id ('' = next auto id), name, data (JSON text), delay_ms, priority, lifo ('1'/''),
--          attempts, options (JSON text or ''), keep-completed count, keep-completed age ms,
--          keep-failed count, keep-failed age ms ('' = keep all)
-- Returns  {OK, id, created (1|0), fields, ...}: for an id that exists already, created is 0 and
--          fields holds the existing job's hash (nothing is changed); otherwise fields is empty.
local GROUP = 12
local n = tonumber(ARGV[3])
local marked = false -- meta exists (queue listings find queues by it); an auto id marks it too
local out = {OK}
for i = 0, n - 1 do
  local a = 3 + i * GROUP
  local id = ARGV[a + 1]
  local existing = nil
  if id == '' then
    repeat
      id = tostring(redis.call('HINCRBY', K_META, 'id', 1))
    until redis.call('EXISTS', job_key(id)) == 0
    marked = true
  else
    if not marked then
      redis.call('HSETNX', K_META, 'v', '1')
      marked = true
    end
    existing = redis.call('HGETALL', job_key(id))
    if #existing == 0 then existing = nil end
  end
  if existing then
    out[#out + 1] = id
    out[#out + 1] = 0
    out[#out + 1] = existing
  else
    local jk = job_key(id)
    local delay = tonumber(ARGV[a + 4])
    local priority = tonumber(ARGV[a + 5])
    local lifo = ARGV[a + 6] == '1'
    local fields = {'n', ARGV[a + 2], 'd', ARGV[a + 3], 't', NOW}
    if priority > 0 then fields[#fields + 1] = 'p'; fields[#fields + 1] = priority end
    if lifo then fields[#fields + 1] = 'l'; fields[#fields + 1] = '1' end
    if ARGV[a + 7] ~= '1' then fields[#fields + 1] = 'a'; fields[#fields + 1] = ARGV[a + 7] end
    local optional = {'o', 'kc', 'ka', 'fc', 'fa'}
    for j = 1, 5 do
      local v = ARGV[a + 7 + j]
      if v ~= '' then fields[#fields + 1] = optional[j]; fields[#fields + 1] = v end
    end
    if delay > 0 then
      fields[#fields + 1] = 's'; fields[#fields + 1] = 'd'
      fields[#fields + 1] = 'r'; fields[#fields + 1] = NOW + delay
      redis.call('HSET', jk, unpack(fields))
      park(id, NOW + delay)
      emit('added', id, 'delay', delay)
    else
      redis.call('HSET', jk, unpack(fields))
      push_waiting(id, priority, lifo, false)
      emit('added', id)
    end
    out[#out + 1] = id
    out[#out + 1] = 1
    out[#out + 1] = {}
  end
end
return out
