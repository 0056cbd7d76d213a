-- Shared by every script. Every script takes the queue's key prefix as KEYS[1] (for example
-- "jqc:{photos}:", hash tag included) and derives each key it touches from it, so all keys of one
-- queue live in one Redis Cluster slot. ARGV[1] is the caller's clock in ms (the engine never reads
-- the server's clock) and ARGV[2] the approximate cap of the events stream (0 turns events off).
local BASE = KEYS[1]
local NOW = tonumber(ARGV[1])
local EVMAX = tonumber(ARGV[2])
local K_META = BASE .. 'meta'
local K_WAIT = BASE .. 'wait'
local K_PRIO = BASE .. 'prio'
local K_DELAYED = BASE .. 'delayed'
local K_ACTIVE = BASE .. 'active'
local K_COMPLETED = BASE .. 'completed'
local K_FAILED = BASE .. 'failed'
local K_DLQ = BASE .. 'dlq'
local K_EVENTS = BASE .. 'events'
local K_MINUTES = BASE .. 'mi'

local function job_key(id) return BASE .. 'j:' .. id end
local function log_key(id) return BASE .. 'l:' .. id end
local function dead_key(id) return BASE .. 'dl:' .. id end

-- A job's state code: 'w' waiting (stored as no 's' field), 'd', 'a', 'c' or 'f'; false if no job.
local function job_state(id)
  local jk = job_key(id)
  local s = redis.call('HGET', jk, 's')
  if s then return s end
  if redis.call('EXISTS', jk) == 1 then return 'w' end
  return false
end

-- Append one event to the capped stream: e = event, j = job id, t = caller's clock.
local function emit(event, id, ...)
  if EVMAX > 0 then
    redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVMAX, '*', 'e', event, 'j', id, 't', NOW, ...)
  end
end
