-- purge: delete dead-letter records (the failed jobs themselves follow their own retention).
--@include base
--@keys dlq dead
-- ARGV[1]  now (ms, unused)  ARGV[2] events cap (unused)
-- ARGV[3]  job id, or '' for the oldest records
-- ARGV[4]  most records to delete when ARGV[3] is ''
-- Returns  {OK, deleted} | {MORE, deleted} when records remain | {JOB_NOT_FOUND, reason}
if ARGV[3] ~= '' then
  if redis.call('ZREM', K_DLQ, ARGV[3]) == 0 then return {JOB_NOT_FOUND, 'no dead letter for job ' .. ARGV[3]} end
  redis.call('HDEL', K_DEAD, ARGV[3])
  return {OK, 1}
end
local ids = redis.call('ZRANGE', K_DLQ, 0, tonumber(ARGV[4]) - 1)
if #ids > 0 then
  redis.call('ZREM', K_DLQ, unpack(ids))
  redis.call('HDEL', K_DEAD, unpack(ids))
end
if redis.call('ZCARD', K_DLQ) > 0 then return {MORE, #ids} end
return {OK, #ids}
