-- Completing one held job: token check, metrics, result, retention, event.
-- Returns nil when done, or the error reply {LOCK_LOST, reason} (nothing changed).
-- The token field 'k' is left in place: once 's' is no longer 'a', no token is valid.
-- A job cancel.lua marked (cx) never completes: it fails for good with code 'cancelled' instead.
-- The 'completed' event carries the result (rv) when it is at most EVENT_RESULT_MAX bytes
-- (jqc.engine.results.EVENT_RESULT_MAX, which a test keeps equal).
local EVENT_RESULT_MAX = 4096
-- `keep`, when given, is the worker's retention {count, age ms} ('' = unlimited), used instead of the job's.
local function complete_job(id, token, result, worker, keep)
  local f, err = check_token(id, token, 'ps', 'r', 't', 'kc', 'ka', 'cx')
  if err then return err end
  redis.call('ZREM', K_ACTIVE, id)
  local started = tonumber(f[3])
  local wait_ms = started - (tonumber(f[4] or f[5]) or started)
  if f[8] then
    end_cancelled(id, worker, wait_ms, NOW - started, 0, nil)
    return nil
  end
  record_metrics('c', wait_ms, NOW - started)
  redis.call('HSET', job_key(id), 's', 'c', 'fo', NOW, 'rv', result)
  if keep then retire(K_COMPLETED, id, keep[1], keep[2]) else retire(K_COMPLETED, id, f[6], f[7]) end
  if #result <= EVENT_RESULT_MAX then emit('completed', id, 'rv', result) else emit('completed', id) end
  return nil
end
