-- add: create one or many jobs atomically (add and add_bulk use this one script).
--@include base, enqueue
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  number of option groups G, then G groups of 12 values shared by the jobs that use them:
--          delay_ms, priority, lifo ('1'/''), attempts, options (JSON text or ''), keep-completed
--          count, keep-completed age ms, keep-failed count, keep-failed age ms ('' = keep all),
--          dedup key ('' = none), dedup ttl ms ('' = none), dedup mode (s simple, t throttle,
--          b debounce: jqc.engine.dedup)
-- then     number of jobs N, then N groups of 4 values: id ('' = next auto id), name,
--          data (JSON text), option group (1-based)
-- Returns  {OK, id, created (1|0|2), fields, ...}: for an id that exists already, created is 0 and
--          fields holds the existing job's hash (nothing is changed); for an add whose dedup key
--          is taken, created is 2 with the id and hash of the job it was deduplicated against
--          (changed only by a debounce); otherwise fields is empty.
local OPTION_GROUP, JOB_GROUP = 12, 4
local K_DEDUP = BASE .. 'dd' -- dedup key -> '<expiry ms, 0 = until its job finishes>:<job id>'
local groups = {}
local g = tonumber(ARGV[3])
for i = 0, g - 1 do
  local a = 3 + i * OPTION_GROUP
  local fields = {}
  if ARGV[a + 2] ~= '0' then fields[#fields + 1] = 'p'; fields[#fields + 1] = ARGV[a + 2] end
  if ARGV[a + 3] == '1' then fields[#fields + 1] = 'l'; fields[#fields + 1] = '1' end
  if ARGV[a + 4] ~= '1' then fields[#fields + 1] = 'a'; fields[#fields + 1] = ARGV[a + 4] end
  local optional = {'o', 'kc', 'ka', 'fc', 'fa'}
  for j = 1, 5 do
    if ARGV[a + 4 + j] ~= '' then fields[#fields + 1] = optional[j]; fields[#fields + 1] = ARGV[a + 4 + j] end
  end
  groups[i + 1] = {delay = tonumber(ARGV[a + 1]), priority = tonumber(ARGV[a + 2]), lifo = ARGV[a + 3] == '1',
    fields = fields, dkey = ARGV[a + 10], dttl = tonumber(ARGV[a + 11]), dmode = ARGV[a + 12]}
end
local base = 4 + g * OPTION_GROUP
local n = tonumber(ARGV[base])

-- Reserve a block of automatic ids in one call; an id a custom job already uses is skipped.
local autos = 0
for i = 0, n - 1 do
  if ARGV[base + 1 + i * JOB_GROUP] == '' then autos = autos + 1 end
end
local next_auto, reserved_last = 0, 0
if autos > 0 then
  reserved_last = redis.call('HINCRBY', K_META, 'id', autos)
  next_auto = reserved_last - autos + 1
else
  redis.call('HSETNX', K_META, 'v', '1') -- meta must exist: queue listings find queues by it
end
local function auto_id()
  while true do
    local id
    if next_auto <= reserved_last then
      id = string.format('%d', next_auto)
      next_auto = next_auto + 1
    else -- the block ran short because custom jobs took some of its ids
      id = string.format('%d', redis.call('HINCRBY', K_META, 'id', 1))
    end
    if redis.call('EXISTS', job_key(id)) == 0 then return id end
  end
end

-- The job a dedup key holds, if the key is still taken for `group`'s mode (else nil).
local function dedup_holder(group)
  local entry = redis.call('HGET', K_DEDUP, group.dkey)
  if not entry then return nil end
  local sep = string.find(entry, ':', 1, true)
  local expiry, holder = tonumber(string.sub(entry, 1, sep - 1)), string.sub(entry, sep + 1)
  if group.dmode == 't' then
    if expiry > NOW and redis.call('EXISTS', job_key(holder)) == 1 then return holder end
    return nil
  end
  local state = job_state(holder)
  if state == 'w' or state == 'd' or (state == 'a' and group.dmode == 's') then return holder, state end
  return nil -- finished or gone (and for debounce, started): the key is free
end

-- A debounced add: the pending job takes the new data; a delayed one, when the add has a delay,
-- is due again from now (ZADD XX: a producer may write, not read, the delayed set; meta.nd may stay
-- early, which only makes the next claim look at the delayed set once). A waiting one keeps its place.
local function debounce(holder, state, data, delay)
  redis.call('HSET', job_key(holder), 'd', data)
  if delay > 0 and state == 'd' then
    redis.call('ZADD', K_DELAYED, 'XX', NOW + delay, holder)
    redis.call('HSET', job_key(holder), 'r', NOW + delay)
    emit('delayed', holder, 'delay', delay)
  end
  emit('updated', holder, 'debounced', '1')
end

local out = {OK}
local fifo = {} -- priority-0 FIFO jobs, pushed together at the end (LPUSH keeps their order)
for i = 0, n - 1 do
  local a = base + 1 + i * JOB_GROUP
  local id = ARGV[a]
  local existing = nil
  local group = groups[tonumber(ARGV[a + 3])]
  local holder, holder_state = nil, nil
  if group.dkey ~= '' then holder, holder_state = dedup_holder(group) end
  if holder then
    if group.dmode == 'b' then debounce(holder, holder_state, ARGV[a + 2], group.delay) end
    emit('deduplicated', holder, 'key', group.dkey)
    out[#out + 1] = holder
    out[#out + 1] = 2
    out[#out + 1] = redis.call('HGETALL', job_key(holder))
  else
    if id == '' then
      id = auto_id()
    else
      existing = redis.call('HGETALL', job_key(id))
      if #existing == 0 then existing = nil end
    end
    if existing then
      out[#out + 1] = id
      out[#out + 1] = 0
      out[#out + 1] = existing
    else
      local fields = {'n', ARGV[a + 1], 'd', ARGV[a + 2], 't', NOW}
      for _, v in ipairs(group.fields) do fields[#fields + 1] = v end
      if group.delay > 0 then
        fields[#fields + 1] = 's'; fields[#fields + 1] = 'd'
        fields[#fields + 1] = 'r'; fields[#fields + 1] = NOW + group.delay
        redis.call('HSET', job_key(id), unpack(fields))
        park(id, NOW + group.delay)
        emit('added', id, 'n', ARGV[a + 1], 'delay', group.delay)
      else
        redis.call('HSET', job_key(id), unpack(fields))
        if group.priority == 0 and not group.lifo then
          fifo[#fifo + 1] = id
        else
          push_waiting(id, group.priority, group.lifo, false)
        end
        emit('added', id, 'n', ARGV[a + 1])
      end
      if group.dkey ~= '' then
        local expiry = 0
        if group.dmode == 't' then expiry = NOW + group.dttl end
        redis.call('HSET', K_DEDUP, group.dkey, string.format('%d', expiry) .. ':' .. id)
      end
      out[#out + 1] = id
      out[#out + 1] = 1
      out[#out + 1] = {}
    end
  end
end
if #fifo > 0 then redis.call('LPUSH', K_WAIT, unpack(fifo)) end
return out
