-- flow_park: a running job adds children to itself and waits for them (fan-out at run time).
-- Token-checked like a completion: the holder's job leaves the active set (its lock is released,
-- its token no longer valid) for waiting-children, held until its new children exist, and the
-- flow's intent is written (the same protocol as a new flow: docs/workflows.md, "Flows").
--@include base, job, flow, token
--@keys meta active events jobs parked flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] token
-- ARGV[5]  the intent (packed record, its t set here)
-- ARGV[6]  the new children's entries (packed list, as field ch holds them)
-- Returns  {OK, how many children were added} | {LOCK_LOST, reason} | {LAYOUT_MISMATCH, reason}
--          | {WRONG_STATE, reason}: cancel.lua marked the job, so it adds no children (nothing changed)
local id = ARGV[3]
local rec, err = check_token(id, ARGV[4])
if err then return err end
if rec.cx then return {WRONG_STATE, 'job ' .. id .. ' was cancelled (' .. rec.cx .. '): it adds no children'} end
local kids = children_of(rec)
local known = {}
for _, kid in ipairs(kids) do known[kid.q .. '/' .. kid.i] = true end
local added = 0
for _, text in ipairs(unpack_list(ARGV[6])) do
  local kid = decode(text)
  if not known[kid.q .. '/' .. kid.i] then
    kids[#kids + 1] = kid
    added = added + 1
  end
end
set_children(rec, kids)
local intent = decode(ARGV[5])
intent.t = NOW
redis.call('HSET', K_FLOWS, 'i:' .. id, encode(intent))
redis.call('ZREM', K_ACTIVE, id)
rec.s, rec.hd = 'p', '1'
save_job(id, rec)
redis.call('ZADD', K_PARKED, NOW, id)
emit('waiting-children', id, 'children', added)
return {OK, added}
