-- flow_release: the flow is whole; let its held nodes go. A node with no pending children starts
-- waiting, the others stay in waiting-children until their last child is delivered. Idempotent.
--@include base, job, enqueue, flow
--@keys meta wait prio events jobs parked
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  number of ids N, then N job ids
-- Returns  {OK, how many started waiting}
local n = tonumber(ARGV[3])
local started = 0
for i = 1, n do
  local id = ARGV[3 + i]
  local rec = load_job(id)
  if rec and rec.s == 'p' and rec.hd then
    rec.hd = nil
    if pending_children(children_of(rec)) == 0 then
      redis.call('ZREM', K_PARKED, id)
      rec.r = NOW
      enqueue_stored(id, rec, false)
      emit('waiting', id)
      started = started + 1
    end
    save_job(id, rec)
  end
end
return {OK, started}
