-- progress: a job's holder records its progress (any JSON value) and announces it.
--@include base, job, token
--@keys meta events jobs
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  job id            ARGV[4] token
-- ARGV[5]  progress (JSON text)
-- Returns  {OK} | {LOCK_LOST, reason} | {LAYOUT_MISMATCH, reason}
local rec, err = check_token(ARGV[3], ARGV[4])
if err then return err end
rec.pg = ARGV[5]
save_job(ARGV[3], rec)
emit('progress', ARGV[3], 'v', ARGV[5])
return {OK}
