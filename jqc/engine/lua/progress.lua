-- progress: a job's holder records its progress (any JSON value) and announces it.
--@include base, token
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] token
-- ARGV[5]  progress (JSON text)
-- Returns  {OK} | {LOCK_LOST, reason}
local f, err = check_token(ARGV[3], ARGV[4])
if err then return err end
redis.call('HSET', job_key(ARGV[3]), 'pg', ARGV[5])
emit('progress', ARGV[3], 'v', ARGV[5])
return {OK}
