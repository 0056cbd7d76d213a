-- Completing one held job: token check, metrics, result, retention, event.
-- Returns nil when done, or the error reply {LOCK_LOST, reason} (nothing changed).
-- The token field 'k' is left in place: once 's' is no longer 'a', no token is valid.
local function complete_job(id, token, result)
  local rec, err, stored = check_token(id, token)
  if err then return err end
  redis.call('ZREM', K_ACTIVE, id)
  local started = tonumber(rec.ps)
  record_metrics('c', started - (tonumber(rec.r or rec.t) or started), NOW - started)
  retire(K_COMPLETED, id, stored .. field('s', 'c') .. field('fo', NOW) .. field('rv', result), rec.kc, rec.ka)
  emit('completed', id)
  flow_notify(id, rec, 'c', result) -- flows: tell the parent (include/flow.lua)
  return nil
end
