-- change_priority: give a job a new priority; a waiting job moves to its new place at once.
--@include base, enqueue
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  job id            ARGV[4] new priority (negative runs before the default 0)
-- Returns  {OK} | {JOB_NOT_FOUND, reason}
local id = ARGV[3]
local jk = job_key(id)
local state = job_state(id)
if not state then return {JOB_NOT_FOUND, 'no job ' .. id} end
local lifo = redis.call('HGET', jk, 'l') == '1'
local priority = tonumber(ARGV[4])
if priority ~= 0 then redis.call('HSET', jk, 'p', priority) else redis.call('HDEL', jk, 'p') end
if state == 'w' then
  unqueue_waiting(id)
  push_waiting(id, priority, lifo, false)
end
return {OK}
