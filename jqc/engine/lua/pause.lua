-- pause: pause or resume claiming on the queue (waiting jobs stay where they are).
--@include base
--@keys meta events
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  '1' to pause, '0' to resume
-- Returns  {OK, changed (1|0)} | {LAYOUT_MISMATCH, reason}
local m = redis.call('HMGET', K_META, 'paused', 'v')
local bad = layout_error(m[2])
if bad then return bad end
local paused = m[1] == '1'
local want = ARGV[3] == '1'
if paused == want then return {OK, 0} end
if want then
  redis.call('HSET', K_META, 'paused', '1', 'v', LAYOUT)
  emit('paused', '')
else
  redis.call('HDEL', K_META, 'paused')
  emit('resumed', '')
end
return {OK, 1}
