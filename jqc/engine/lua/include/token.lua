-- Fencing: a write about a held job is accepted only from the holder of its current token.
-- Returns the job's record (a table) and its stored text when the token is current, or nil and an
-- error reply table
-- ({LOCK_LOST, reason}, or {LAYOUT_MISMATCH, reason} for a queue an older jqc wrote) for the caller
-- to return as is.
local function check_token(id, token)
  local rec, stored = load_job(id)
  if not rec then
    local bad = layout_error(redis.call('HGET', K_META, 'v'))
    if bad then return nil, bad end
  end
  if (not rec) or rec.s ~= 'a' or rec.k ~= token then
    return nil, {LOCK_LOST, 'job ' .. id .. ' is no longer held under token ' .. token}
  end
  return rec, nil, stored
end
