-- Shared by every script. Every key a script touches arrives in KEYS, bound by the loader to the
-- K_ locals its --@keys line names (jqc/engine/lua_source.py); no key is ever built here. All keys
-- of one queue share its {Q} hash tag, so a script touches one Redis Cluster slot. ARGV[1] is the
-- caller's clock in ms (the engine never reads the server's clock) and ARGV[2] the approximate cap
-- of the events stream (0 turns events off).
local NOW = tonumber(ARGV[1])
local EVMAX = tonumber(ARGV[2])
local LAYOUT = '2' -- meta.v: the key layout this code reads and writes (jqc.engine.keys.LAYOUT_VERSION)

-- Records (a job, a dead letter, a worker) are fields of per-queue hashes, packed as
-- <name><byte length>:<value> ... (names are letters and _ only); jqc/engine/records.py reads them.
-- A name may appear more than once: the last one counts. That lets the hot paths (claim, complete)
-- append the fields they change (`field`) instead of encoding the whole record again; any script
-- that encodes a whole record (`encode`) writes each name once, so duplicates never pile up.
local function decode(text)
  local rec = {}
  if not text then return rec end
  local pos, n = 1, #text
  while pos <= n do
    local _, stop, name, len = string.find(text, '^([%a_]+)(%d+):', pos)
    if not stop then break end -- a corrupt tail: Python names what is missing when it decodes
    pos = stop + tonumber(len) + 1
    rec[name] = string.sub(text, stop + 1, pos - 1)
  end
  return rec
end

-- Integers as digits (never 1e+15), anything else as the string it is.
local function text_of(v)
  if type(v) == 'number' then
    if v == math.floor(v) then return string.format('%d', v) end
    return string.format('%.17g', v)
  end
  return v
end

-- One packed field (append it to a record's text to set that field).
local function field(name, v)
  v = text_of(v)
  return name .. #v .. ':' .. v
end

local function encode(rec)
  local names = {}
  for name in pairs(rec) do names[#names + 1] = name end
  table.sort(names)
  local parts = {}
  for i, name in ipairs(names) do
    local v = text_of(rec[name])
    parts[i] = name .. #v .. ':' .. v
  end
  return table.concat(parts)
end

-- The queue's layout version: nil when this code may read and write the queue, else the error
-- reply. A queue whose meta hash exists without v (or with another v) was written by an older jqc.
local function layout_error(v)
  if v == LAYOUT then return nil end
  if v == false or v == nil then
    if redis.call('EXISTS', K_META) == 0 then return nil end
    v = '1'
  end
  return {LAYOUT_MISMATCH, 'queue data is in key layout ' .. v .. ' but this jqc reads layout ' .. LAYOUT ..
    ': drain it with the jqc that wrote it, or obliterate it (see docs/keys.md)'}
end

-- Append one event to the capped stream: e = event, j = job id, t = caller's clock.
local function emit(event, id, ...)
  if EVMAX > 0 then
    redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVMAX, '*', 'e', event, 'j', id, 't', NOW, ...)
  end
end
