-- complete: a job's holder reports success; optionally claims its next job in the same call.
--@include base, enqueue, claim, finish, token
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] token
-- ARGV[5]  result (JSON text)
-- ARGV[6]  how many next jobs to claim (0 = none)
-- ARGV[7]  lock duration (ms) for the next jobs
-- ARGV[8]  worker id
-- Returns  {OK, claim_reply} (claim_reply as claim.lua returns, or {} when ARGV[6] is 0)
--          | {LOCK_LOST, reason}: the token is stale, nothing changed.
local id = ARGV[3]
local f, err = check_token(id, ARGV[4], 'ps', 'r', 't', 'kc', 'ka')
if err then return err end
local jk = job_key(id)
redis.call('ZREM', K_ACTIVE, id)
local started = tonumber(f[3])
record_metrics('c', started - (tonumber(f[4] or f[5]) or started), NOW - started)
redis.call('HSET', jk, 's', 'c', 'fo', NOW, 'rv', ARGV[5])
redis.call('HDEL', jk, 'k')
retire(K_COMPLETED, id, f[6], f[7])
emit('completed', id)
local want = tonumber(ARGV[6])
if want > 0 then return {OK, claim(want, tonumber(ARGV[7]), ARGV[8])} end
return {OK, {}}
