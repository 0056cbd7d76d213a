-- add: create one or many jobs atomically (add and add_bulk use this one script).
--@include base, job, enqueue
--@keys meta wait prio delayed events jobs
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  number of option groups G, then G groups of 9 values shared by the jobs that use them:
--          delay_ms, priority, lifo ('1'/''), attempts, options (JSON text or ''), keep-completed
--          count, keep-completed age ms, keep-failed count, keep-failed age ms ('' = keep all)
-- then     number of jobs N, then N groups of 4 values: id ('' = next auto id), name,
--          data (JSON text), option group (1-based)
-- Returns  {OK, id, created (1|0), record, ...}: for an id that exists already, created is 0 and
--          record is the existing job's packed record (nothing is changed); otherwise it is ''
--          | {LAYOUT_MISMATCH, reason}
local OPTION_GROUP, JOB_GROUP = 9, 4
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
    packed = table.concat(packed)}
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
local pending = {} -- id -> packed record of the jobs this call adds, written together at the end
local stored = {}
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

local out = {OK}
local fifo = {} -- priority-0 FIFO jobs, pushed together at the end (LPUSH keeps their order)
for i = 0, n - 1 do
  local a = base + 1 + i * JOB_GROUP
  local id = ARGV[a]
  local existing = nil
  if id == '' then
    id = auto_id()
  else
    existing = pending[id] or redis.call('HGET', K_JOBS, id)
  end
  if existing then
    out[#out + 1] = id
    out[#out + 1] = 0
    out[#out + 1] = existing
  else
    local group = groups[tonumber(ARGV[a + 3])]
    -- The record, packed directly: name, data, created at, then the group's option fields.
    local text = field('n', ARGV[a + 1]) .. field('d', ARGV[a + 2]) .. field('t', NOW) .. group.packed
    if group.delay > 0 then
      pending[id] = text .. field('s', 'd') .. field('r', NOW + group.delay)
      stored[#stored + 1] = id
      stored[#stored + 1] = pending[id]
      park(id, NOW + group.delay)
      emit('added', id, 'delay', group.delay)
    else
      pending[id] = text
      stored[#stored + 1] = id
      stored[#stored + 1] = text
      if group.priority == 0 and not group.lifo then
        fifo[#fifo + 1] = id
      else
        push_waiting(id, group.priority, group.lifo, false)
      end
      emit('added', id)
    end
    out[#out + 1] = id
    out[#out + 1] = 1
    out[#out + 1] = ''
  end
end
if #stored > 0 then redis.call('HSET', K_JOBS, unpack(stored)) end
if #fifo > 0 then redis.call('LPUSH', K_WAIT, unpack(fifo)) end
return out
