-- Fencing: a write about a held job is accepted only from the holder of its current token.
-- Returns the HMGET values of `fields` (after 's' and 'k') when the token is current, or an error
-- reply table {LOCK_LOST, reason} for the caller to return as is.
local function check_token(id, token, ...)
  local f = redis.call('HMGET', job_key(id), 's', 'k', ...)
  if f[1] ~= 'a' or f[2] ~= token then
    return nil, {LOCK_LOST, 'job ' .. id .. ' is no longer held under token ' .. token}
  end
  return f, nil
end
