-- Completing one held job: token check, metrics, result, retention, event.
-- Returns nil when done, or the error reply {LOCK_LOST, reason} (nothing changed).
-- The token field 'k' is left in place: once 's' is no longer 'a', no token is valid.
local function complete_job(id, token, result)
  local f, err = check_token(id, token, 'ps', 'r', 't', 'kc', 'ka')
  if err then return err end
  redis.call('ZREM', K_ACTIVE, id)
  local started = tonumber(f[3])
  record_metrics('c', started - (tonumber(f[4] or f[5]) or started), NOW - started)
  redis.call('HSET', job_key(id), 's', 'c', 'fo', NOW, 'rv', result)
  retire(K_COMPLETED, id, f[6], f[7])
  emit('completed', id)
  return nil
end
