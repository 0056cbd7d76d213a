-- add: create one or many jobs atomically (add and add_bulk use this one script).
--@include base, job, enqueue
--@keys meta wait prio delayed events jobs dedup
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  number of option groups G, then G groups of 12 values shared by the jobs that use them:
--          delay_ms, priority, lifo ('1'/''), attempts, options (JSON text or ''), keep-completed
--          count, keep-completed age ms, keep-failed count, keep-failed age ms ('' = keep all),
--          dedup key ('' = none), dedup ttl ms ('' = none), dedup mode (s simple, t throttle,
--          b debounce: jqc.engine.dedup)
-- then     number of jobs N, then N groups of 4 values: id ('' = next auto id), name,
--          data (JSON text), option group (1-based)
-- Returns  {OK, id, created (1|0|2), record, ...}: for an id that exists already, created is 0 and
--          record is the existing job's packed record (nothing is changed); for an add whose dedup
--          key is taken, created is 2 with the id and packed record of the job it was deduplicated
--          against (changed only by a debounce); otherwise record is '' | {LAYOUT_MISMATCH, reason}
-- K_DEDUP: hash dedup key -> '<expiry ms, 0 = until its job finishes>:<job id>'
local OPTION_GROUP, JOB_GROUP = 12, 4
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
  local packed = {}
  for j = 1, #fields, 2 do packed[#packed + 1] = field(fields[j], fields[j + 1]) end
  groups[i + 1] = {delay = tonumber(ARGV[a + 1]), priority = tonumber(ARGV[a + 2]), lifo = ARGV[a + 3] == '1',
    packed = table.concat(packed), dkey = ARGV[a + 10], dttl = tonumber(ARGV[a + 11]), dmode = ARGV[a + 12]}
end
local base = 4 + g * OPTION_GROUP
local n = tonumber(ARGV[base])

-- Reserve a block of automatic ids in one call; an id a custom job already uses is skipped.
local autos = 0
for i = 0, n - 1 do
  if ARGV[base + 1 + i * JOB_GROUP] == '' then autos = autos + 1 end
end
local version = redis.call('HGET', K_META, 'v')
if version ~= LAYOUT then
  local bad = layout_error(version)
  if bad then return bad end
  redis.call('HSET', K_META, 'v', LAYOUT) -- meta must exist: queue listings find queues by it
end
local next_auto, reserved_last = 0, 0
if autos > 0 then
  reserved_last = redis.call('HINCRBY', K_META, 'id', autos)
  next_auto = reserved_last - autos + 1
end
local pending = {} -- id -> packed record of the jobs this call writes, written together at the end
local order = {} -- the ids of `pending`, in the order they were first written
local function auto_id()
  while true do
    local id
    if next_auto <= reserved_last then
      id = string.format('%d', next_auto)
      next_auto = next_auto + 1
    else -- the block ran short because custom jobs took some of its ids
      id = string.format('%d', redis.call('HINCRBY', K_META, 'id', 1))
    end
    if not pending[id] and redis.call('HEXISTS', K_JOBS, id) == 0 then return id end
  end
end

-- A job's packed record as this call sees it: written earlier in this call, or stored.
local function current(id)
  return pending[id] or redis.call('HGET', K_JOBS, id)
end

local function write(id, text)
  if not pending[id] then order[#order + 1] = id end
  pending[id] = text
end

-- The job a dedup key holds (and its state and record), if the key is still taken for `group`'s
-- mode (else nil).
local function dedup_holder(group)
  local entry = redis.call('HGET', K_DEDUP, group.dkey)
  if not entry then return nil end
  local sep = string.find(entry, ':', 1, true)
  local expiry, holder = tonumber(string.sub(entry, 1, sep - 1)), string.sub(entry, sep + 1)
  local text = current(holder)
  if not text then return nil end -- gone: the key is free
  if group.dmode == 't' then
    if expiry > NOW then return holder, nil, text end
    return nil
  end
  local state = state_of(decode(text))
  if state == 'w' or state == 'd' or (state == 'a' and group.dmode == 's') then return holder, state, text end
  return nil -- finished (and for debounce, started): the key is free
end

-- A debounced add: the pending job takes the new data; a delayed one, when the add has a delay,
-- is due again from now (ZADD XX: a producer may write, not read, the delayed set; meta.nd may stay
-- early, which only makes the next claim look at the delayed set once). A waiting one keeps its
-- place. Returns the holder's new record.
local function debounce(holder, state, text, data, delay)
  text = text .. field('d', data)
  if delay > 0 and state == 'd' then
    redis.call('ZADD', K_DELAYED, 'XX', NOW + delay, holder)
    text = text .. field('r', NOW + delay)
    emit('delayed', holder, 'delay', delay)
  end
  write(holder, text)
  emit('updated', holder, 'debounced', '1')
  return text
end

local out = {OK}
local fifo = {} -- priority-0 FIFO jobs, pushed together at the end (LPUSH keeps their order)
for i = 0, n - 1 do
  local a = base + 1 + i * JOB_GROUP
  local id = ARGV[a]
  local group = groups[tonumber(ARGV[a + 3])]
  local holder, holder_state, holder_text = nil, nil, nil
  if group.dkey ~= '' then holder, holder_state, holder_text = dedup_holder(group) end
  if holder then
    if group.dmode == 'b' then holder_text = debounce(holder, holder_state, holder_text, ARGV[a + 2], group.delay) end
    emit('deduplicated', holder, 'key', group.dkey)
    out[#out + 1] = holder
    out[#out + 1] = 2
    out[#out + 1] = holder_text
  else
    local existing = nil
    if id == '' then
      id = auto_id()
    else
      existing = current(id)
    end
    if existing then
      out[#out + 1] = id
      out[#out + 1] = 0
      out[#out + 1] = existing
    else
      -- The record, packed directly: name, data, created at, then the group's option fields.
      local text = field('n', ARGV[a + 1]) .. field('d', ARGV[a + 2]) .. field('t', NOW) .. group.packed
      if group.delay > 0 then
        write(id, text .. field('s', 'd') .. field('r', NOW + group.delay))
        park(id, NOW + group.delay)
        emit('added', id, 'n', ARGV[a + 1], 'delay', group.delay)
      else
        write(id, text)
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
      out[#out + 1] = ''
    end
  end
end
if #order > 0 then
  local stored = {}
  for _, id in ipairs(order) do
    stored[#stored + 1] = id
    stored[#stored + 1] = pending[id]
  end
  redis.call('HSET', K_JOBS, unpack(stored))
end
if #fifo > 0 then redis.call('LPUSH', K_WAIT, unpack(fifo)) end
return out
