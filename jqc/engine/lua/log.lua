-- log: a job's holder appends a line to the job's bounded log.
--@include base, token
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  job id            ARGV[4] token
-- ARGV[5]  line              ARGV[6] most lines kept (older ones are dropped)
-- Returns  {OK, lines_now_kept} | {LOCK_LOST, reason}
local f, err = check_token(ARGV[3], ARGV[4])
if err then return err end
local lk = log_key(ARGV[3])
local n = redis.call('RPUSH', lk, ARGV[5])
local keep = tonumber(ARGV[6])
if n > keep then
  redis.call('LTRIM', lk, -keep, -1)
  n = keep
end
return {OK, n}
