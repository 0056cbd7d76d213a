-- lease: take, keep or give up a named lease that lets one worker at a time run a queue-wide chore
-- (the stall check, the schedule driver). The lease is a hash {h = holder, x = expires at (ms,
-- caller's clock)}; the expiry is compared with ARGV[1], never with the server's clock, and the key
-- has no server TTL.
--@include base
--@keys lease
-- KEYS[1]  the lease's key, P:{Q}:<name>-lease (for example 'jqc:{q}:stall-lease')
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  lease name (the caller built KEYS[1] from it)
-- ARGV[4]  holder id
-- ARGV[5]  duration (ms) > 0 to take or keep the lease; 0 to give it up (only its holder can)
-- Returns  {OK, held (1|0), holder ('' if none), expires_ms (0 if none)}: held is 1 when the caller
--          holds the lease after this call.
local holder = ARGV[4]
local ttl = tonumber(ARGV[5])
local cur = redis.call('HMGET', K_LEASE, 'h', 'x')
if ttl == 0 then
  if cur[1] == holder then
    redis.call('DEL', K_LEASE)
    return {OK, 0, '', 0}
  end
  return {OK, 0, cur[1] or '', tonumber(cur[2] or 0)}
end
if cur[1] and cur[1] ~= holder and tonumber(cur[2]) > NOW then
  return {OK, 0, cur[1], tonumber(cur[2])}
end
redis.call('HSET', K_LEASE, 'h', holder, 'x', NOW + ttl)
return {OK, 1, holder, NOW + ttl}
