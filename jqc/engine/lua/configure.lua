-- configure: set or clear queue-wide settings kept in the meta hash.
--@include base
--@keys meta
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3..] pairs of setting, value; an empty value clears the setting. Settings:
--          rlm/rlw rate limit (max jobs per window, window ms), cc concurrency limit,
--          ms maximum stall count, dm dead-letter cap, mr metrics minutes kept
-- Returns  {OK} | {BAD_ARGUMENT, reason} | {LAYOUT_MISMATCH, reason}
local allowed = {rlm = true, rlw = true, cc = true, ms = true, dm = true, mr = true}
for i = 3, #ARGV, 2 do
  if not allowed[ARGV[i]] then return {BAD_ARGUMENT, 'unknown queue setting ' .. ARGV[i]} end
end
local bad = layout_error(redis.call('HGET', K_META, 'v'))
if bad then return bad end
redis.call('HSET', K_META, 'v', LAYOUT)
for i = 3, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', K_META, ARGV[i])
  else
    redis.call('HSET', K_META, ARGV[i], ARGV[i + 1])
  end
end
if not redis.call('HGET', K_META, 'rlm') then redis.call('HDEL', K_META, 'rls', 'rln') end
return {OK}
