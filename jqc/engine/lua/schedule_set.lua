-- schedule_set: create or change a schedule (upsert by name), if nobody changed it meanwhile.
--@include base
--@keys meta schedules record events
-- KEYS     as --@keys names them; schedules = sorted set name -> next tick ms; record = the
--          schedule's record (hash P:{Q}:sc:<name>)
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  schedule name     ARGV[4] revision the caller read (0: the schedule must not exist)
-- ARGV[5]  signature of the new settings   ARGV[6] next tick (ms)   ARGV[7] anchor of the ticks (ms)
-- ARGV[8..] pairs of record field, value: the settings (spec fields, see docs/keys.md)
-- Returns  {OK, 1, revision} when written; {OK, 0, current revision} when the record changed since
--          the caller read it (read again and retry) | {LAYOUT_MISMATCH, reason}
local bad = layout_error(redis.call('HGET', K_META, 'v'))
if bad then return bad end
local cur = tonumber(redis.call('HGET', K_RECORD, 'rev') or '0')
if cur ~= tonumber(ARGV[4]) then return {OK, 0, cur} end
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', K_RECORD, unpack(fields))
redis.call('HSET', K_RECORD, 'sig', ARGV[5], 'nx', ARGV[6], 'an', ARGV[7], 'rev', cur + 1, 'ua', NOW)
if cur == 0 then redis.call('HSET', K_RECORD, 'ca', NOW) end
redis.call('ZADD', K_SCHEDULES, tonumber(ARGV[6]), ARGV[3])
redis.call('HSET', K_META, 'v', LAYOUT) -- meta must exist: queue listings find queues by it
emit('scheduled', '', 's', ARGV[3], 'rev', cur + 1)
return {OK, 1, cur + 1}
