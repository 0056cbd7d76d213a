-- purge: delete dead-letter records (the failed jobs themselves follow their own retention).
--@include base
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms, unused)  ARGV[2] events cap (unused)
-- ARGV[3]  job id, or '' for the oldest records
-- ARGV[4]  most records to delete when ARGV[3] is ''
-- Returns  {OK, deleted} | {MORE, deleted} when records remain | {JOB_NOT_FOUND, reason}
if ARGV[3] ~= '' then
  if redis.call('ZREM', K_DLQ, ARGV[3]) == 0 then return {JOB_NOT_FOUND, 'no dead letter for job ' .. ARGV[3]} end
  redis.call('DEL', dead_key(ARGV[3]))
  return {OK, 1}
end
local ids = redis.call('ZRANGE', K_DLQ, 0, tonumber(ARGV[4]) - 1)
for _, id in ipairs(ids) do
  redis.call('ZREM', K_DLQ, id)
  redis.call('DEL', dead_key(id))
end
if redis.call('ZCARD', K_DLQ) > 0 then return {MORE, #ids} end
return {OK, #ids}
