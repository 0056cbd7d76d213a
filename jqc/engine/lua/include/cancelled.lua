-- Ending the run of a job cancel.lua marked (needs flow, finish and enqueue).
-- A run of a job that cancel.lua marked (cx = reason, cy = '1' if it may retry) ends, however its
-- handler ended: it counts as a failed attempt and is retried after `delay` ms while attempts
-- remain if the canceller allowed it (the mark is cleared), else it fails for good with code
-- 'cancelled'. The caller has taken it out of the active set; `rec` is its record (changed and
-- saved here). `keep` (or nil) is the worker's failed-retention {count, age ms} used instead of
-- the job's. Returns 'retry' or 'failed'.
local function end_cancelled(id, rec, worker, wait_ms, run_ms, delay, keep)
  local made = (tonumber(rec.am) or 0) + 1
  local reason = 'cancelled: ' .. rec.cx
  rec.am = made
  if rec.cy == '1' and made < (tonumber(rec.a) or 1) then
    record_metrics('x', wait_ms, run_ms)
    rec.cx, rec.cy = nil, nil
    rec.fr, rec.fk = reason, 'cancelled'
    if delay > 0 then
      schedule(id, rec, NOW + delay)
    else
      rec.r = NOW
      enqueue_stored(id, rec, false)
    end
    save_job(id, rec)
    emit('retrying', id, 'attempt', made, 'delay', delay, 'reason', reason)
    return 'retry'
  end
  record_metrics('f', wait_ms, run_ms)
  fail_for_good(id, rec, worker or '-', reason, 'cancelled', keep)
  flow_notify(id, rec, 'f', reason) -- flows: a cancelled child is a failed child (include/flow.lua)
  return 'failed'
end
