-- flow_create: one queue's part of a new flow (docs/workflows.md, "Flows"). Every node is created
-- held, in waiting-children, so nothing of the flow runs until flow_release.lua frees it; a node
-- that exists already is left as it is, so a repair may run this again.
--@include base, job
--@keys meta events jobs parked flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  root id when this call writes the flow's intent (the root's queue, first call), else ''
-- ARGV[4]  the intent (packed record, its t set here) or ''
-- ARGV[5]  number of nodes N, then N pairs: job id, packed record (without t, s, hd)
-- Returns  {OK, created, root existed (1|0)} | {LAYOUT_MISMATCH, reason}. With a root id, a root
--          that exists already (the flow was added before) creates nothing and writes no intent.
local version = redis.call('HGET', K_META, 'v')
if version ~= LAYOUT then
  local bad = layout_error(version)
  if bad then return bad end
  redis.call('HSET', K_META, 'v', LAYOUT)
end
local root = ARGV[3]
if root ~= '' then
  if redis.call('HEXISTS', K_JOBS, root) == 1 then return {OK, 0, 1} end
  local intent = decode(ARGV[4])
  intent.t = NOW
  redis.call('HSET', K_FLOWS, 'i:' .. root, encode(intent))
end
local n = tonumber(ARGV[5])
local created = 0
for i = 0, n - 1 do
  local id = ARGV[6 + 2 * i]
  if redis.call('HEXISTS', K_JOBS, id) == 0 then
    local rec = decode(ARGV[7 + 2 * i])
    rec.t, rec.s, rec.hd = NOW, 'p', '1'
    save_job(id, rec)
    redis.call('ZADD', K_PARKED, NOW, id)
    emit('added', id, 'flow', '1')
    created = created + 1
  end
end
return {OK, created, 0}
