-- Flows: a parent's children (field ch of its record) and the outbox of flow members.
-- A flow's parent and children may live on different queues, so on Redis Cluster in different
-- slots: no script touches two of them. A child's outcome travels in two steps (docs/workflows.md,
-- "Flows"): the script that finishes the child writes a message to its own queue's K_FLOWS hash
-- (field o:<child id>, the outbox), then flow_deliver.lua records it on the parent and flow_ack.lua
-- drops the message. Every step is idempotent, so the repair chore may redo any of them.
-- ch is a list of packed child entries (q queue, i id, p policy f|i|c, s outcome c|f or absent
-- while pending, v result JSON or failure reason), each as <byte length>:<entry>.
local function unpack_list(text)
  local out = {}
  if not text then return out end
  local pos, n = 1, #text
  while pos <= n do
    local _, stop, len = string.find(text, '^(%d+):', pos)
    if not stop then break end
    pos = stop + tonumber(len) + 1
    out[#out + 1] = string.sub(text, stop + 1, pos - 1)
  end
  return out
end

local function children_of(rec)
  local kids = {}
  for i, text in ipairs(unpack_list(rec.ch)) do kids[i] = decode(text) end
  return kids
end

local function set_children(rec, kids)
  local parts = {}
  for i, kid in ipairs(kids) do
    local text = encode(kid)
    parts[i] = #text .. ':' .. text
  end
  rec.ch = table.concat(parts)
end

local function pending_children(kids)
  local n = 0
  for _, kid in ipairs(kids) do
    if not kid.s then n = n + 1 end
  end
  return n
end

-- A flow child reached an outcome (c completed, f failed for good, r replayed from the dead
-- letters): leave a message for its parent in this queue's outbox, delivered after this script.
local function flow_notify(id, rec, outcome, value)
  if not rec.pi then return end
  redis.call('HSET', K_FLOWS, 'o:' .. id, encode({q = rec.pq, i = rec.pi, o = outcome, v = value or '', t = NOW}))
end
