-- flow_step: move a flow's creation intent on (field i:<root id> of the root queue's K_FLOWS):
-- 'mark' records that every node exists (a repair then only releases), 'drop' that the flow is done.
--@include base
--@keys flows
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  'mark' | 'drop'   ARGV[4] root id
-- Returns  {OK, 1 if the intent was there, else 0}
local field = 'i:' .. ARGV[4]
local text = redis.call('HGET', K_FLOWS, field)
if not text then return {OK, 0} end
if ARGV[3] == 'drop' then
  redis.call('HDEL', K_FLOWS, field)
else
  local intent = decode(text)
  intent.st = 'r'
  redis.call('HSET', K_FLOWS, field, encode(intent))
end
return {OK, 1}
