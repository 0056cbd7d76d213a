-- Completing one held job: token check, metrics, result, retention, event.
-- Returns nil when done, or the error reply {LOCK_LOST, reason} (nothing changed).
-- The token field 'k' is left in place: once 's' is no longer 'a', no token is valid.
-- A job cancel.lua marked (cx) never completes: it ends as end_cancelled (cancelled.lua) says instead.
-- The 'completed' event carries the result (rv) when it is at most EVENT_RESULT_MAX bytes
-- (jqc.engine.results.EVENT_RESULT_MAX, which a test keeps equal).
local EVENT_RESULT_MAX = 4096
-- `keep`, when given, is the worker's retention {count, age ms} ('' = unlimited), used instead of the job's.
local function complete_job(id, token, result, worker, keep)
  local rec, err, stored = check_token(id, token)
  if err then return err end
  redis.call('ZREM', K_ACTIVE, id)
  local started = tonumber(rec.ps)
  local wait_ms = started - (tonumber(rec.r or rec.t) or started)
  if rec.cx then
    end_cancelled(id, rec, worker, wait_ms, NOW - started, 0, nil)
    return nil
  end
  record_metrics('c', wait_ms, NOW - started)
  local kc, ka = rec.kc, rec.ka
  if keep then kc, ka = keep[1], keep[2] end
  retire(K_COMPLETED, id, stored .. field('s', 'c') .. field('fo', NOW) .. field('rv', result), kc, ka)
  if #result <= EVENT_RESULT_MAX then emit('completed', id, 'rv', result) else emit('completed', id) end
  flow_notify(id, rec, 'c', result) -- flows: tell the parent (include/flow.lua)
  return nil
end
