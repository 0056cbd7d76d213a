-- schedule_set: create or change a schedule (upsert by name), if nobody changed it meanwhile.
--@include base
-- KEYS[1]  queue key prefix   KEYS[2] meta   KEYS[3] schedules (sorted set: name -> next tick ms)
-- KEYS[4]  the schedule's record (hash)   KEYS[5] events
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  schedule name     ARGV[4] revision the caller read (0: the schedule must not exist)
-- ARGV[5]  signature of the new settings   ARGV[6] next tick (ms)   ARGV[7] anchor of the ticks (ms)
-- ARGV[8..] pairs of record field, value: the settings (spec fields, see docs/keys.md)
-- Returns  {OK, 1, revision} when written; {OK, 0, current revision} when the record changed since
--          the caller read it (read again and retry)
local rec = KEYS[4]
local cur = tonumber(redis.call('HGET', rec, 'rev') or '0')
if cur ~= tonumber(ARGV[4]) then return {OK, 0, cur} end
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', rec, unpack(fields))
redis.call('HSET', rec, 'sig', ARGV[5], 'nx', ARGV[6], 'an', ARGV[7], 'rev', cur + 1, 'ua', NOW)
if cur == 0 then redis.call('HSET', rec, 'ca', NOW) end
redis.call('ZADD', KEYS[3], tonumber(ARGV[6]), ARGV[3])
redis.call('HSETNX', KEYS[2], 'v', '1') -- meta must exist: queue listings find queues by it
emit('scheduled', '', 's', ARGV[3], 'rev', cur + 1)
return {OK, 1, cur + 1}
