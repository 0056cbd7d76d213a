-- pause: pause or resume claiming on the queue (waiting jobs stay where they are).
--@include base
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  '1' to pause, '0' to resume
-- Returns  {OK, changed (1|0)}
local paused = redis.call('HGET', K_META, 'paused') == '1'
local want = ARGV[3] == '1'
if paused == want then return {OK, 0} end
if want then
  redis.call('HSET', K_META, 'paused', '1')
  emit('paused', '')
else
  redis.call('HDEL', K_META, 'paused')
  emit('resumed', '')
end
return {OK, 1}
