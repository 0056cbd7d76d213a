-- extend: renew the locks of many held jobs in one call (the worker's batched heartbeat).
--@include base, job, token
--@keys meta active jobs
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  lock duration (ms)
-- ARGV[4..] pairs of job id, token
-- Returns  {OK, new_deadline_ms, r1, r2, ...} with ri = 1 if job i's lock was renewed, 0 if its
--          token is stale (that job is lost to this worker and was left unchanged), or {reason}
--          if it was renewed and cancel.lua has marked it (the holder stops its handler).
--          | {LAYOUT_MISMATCH, reason}
local deadline = NOW + tonumber(ARGV[3])
local out = {OK, deadline}
for i = 4, #ARGV, 2 do
  local rec, err = check_token(ARGV[i], ARGV[i + 1])
  if rec then
    redis.call('ZADD', K_ACTIVE, 'XX', deadline, ARGV[i])
    if rec.cx then out[#out + 1] = {rec.cx} else out[#out + 1] = 1 end
  elseif err[1] == LAYOUT_MISMATCH then
    return err
  else
    out[#out + 1] = 0
  end
end
return out
