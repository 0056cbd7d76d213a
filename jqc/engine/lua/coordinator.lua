-- coordinator: the per-queue coordinator lock, fenced, and the scaling decision its holder publishes.
-- The lock is the hash P:{Q}:coordinator (K_COORDINATOR) {h = holder, x = expires at (ms, caller's clock), t = fencing
-- token}. A new holder gets t + 1 (t is never deleted, so tokens only grow); expiry is compared with
-- ARGV[1], never with the server's clock, and the key has no server TTL. The decision goes to the
-- hash P:{Q}:autoscale (K_AUTOSCALE), written only by the holder of the current token before its lock expires,
-- so a coordinator that lost the lock (paused, partitioned, its clock behind) cannot overwrite the
-- decision of the one that replaced it.
--@include base
--@keys coordinator autoscale
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  action: 'acquire' (take the lock, or keep it when ARGV[6] is the current token),
--          'release' (give it up; only with the current token), 'publish' (write the decision),
--          'read' (only look)
-- ARGV[4]  holder id (unique per coordinator process)
-- ARGV[5]  duration (ms) > 0, for acquire
-- ARGV[6]  the caller's token ('' or 0 when it holds none)
-- ARGV[7..] publish: field, value pairs of the decision (the script adds token, holder and at);
--          write the same fields every time, as fields are never removed
-- Returns  {OK, done (1|0), holder ('' if none), token, expires_ms (0 if free)}: done is 1 when the
--          caller holds the lock after acquire, gave it up, or wrote the decision; token is the
--          current (or last) fencing token | {BAD_ARGUMENT, reason}
local action = ARGV[3]
local holder = ARGV[4]
local mine = tonumber(ARGV[6]) or 0
if holder == '' then return {BAD_ARGUMENT, 'the holder id must not be empty'} end
local cur = redis.call('HMGET', K_COORDINATOR, 'h', 'x', 't')
local h, x, t = cur[1] or '', tonumber(cur[2] or 0), tonumber(cur[3] or 0)
local held = h ~= '' and x > NOW
local ours = h == holder and mine > 0 and t == mine
if action == 'read' then
  if not held then return {OK, 0, '', t, 0} end
  return {OK, 0, h, t, x}
elseif action == 'acquire' then
  local ttl = tonumber(ARGV[5])
  if not ttl or ttl <= 0 then return {BAD_ARGUMENT, 'the lock duration must be > 0 ms'} end
  if ours then
    -- Keep it. Even past its expiry this is safe: nobody took the lock meanwhile, or t would differ.
    redis.call('HSET', K_COORDINATOR, 'x', NOW + ttl)
    return {OK, 1, holder, t, NOW + ttl}
  end
  if held then return {OK, 0, h, t, x} end
  t = redis.call('HINCRBY', K_COORDINATOR, 't', 1)
  redis.call('HSET', K_COORDINATOR, 'h', holder, 'x', NOW + ttl)
  return {OK, 1, holder, t, NOW + ttl}
elseif action == 'release' then
  if ours then
    redis.call('HSET', K_COORDINATOR, 'h', '', 'x', 0)
    return {OK, 1, '', t, 0}
  end
  if not held then return {OK, 0, '', t, 0} end
  return {OK, 0, h, t, x}
elseif action == 'publish' then
  if not (ours and held) then
    if not held then return {OK, 0, '', t, 0} end
    return {OK, 0, h, t, x}
  end
  if (#ARGV - 6) % 2 ~= 0 then return {BAD_ARGUMENT, 'decision fields must come in pairs'} end
  redis.call('HSET', K_AUTOSCALE, 'token', t, 'holder', holder, 'at', NOW, unpack(ARGV, 7))
  return {OK, 1, h, t, x}
end
return {BAD_ARGUMENT, 'unknown action ' .. tostring(action)}
