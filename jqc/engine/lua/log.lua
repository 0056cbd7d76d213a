-- log: a job's holder appends a line to the job's bounded log (field <id> of K_LOGS, the lines
-- packed as <byte length>:<line> ..., see jqc/engine/records.py).
--@include base, job, token
--@keys meta jobs logs
-- ARGV[1]  now (ms)          ARGV[2] events cap (unused)
-- ARGV[3]  job id            ARGV[4] token
-- ARGV[5]  line              ARGV[6] most lines kept (older ones are dropped)
-- Returns  {OK, lines_now_kept} | {LOCK_LOST, reason} | {LAYOUT_MISMATCH, reason}
local rec, err = check_token(ARGV[3], ARGV[4])
if err then return err end
local line = ARGV[5]
local text = (redis.call('HGET', K_LOGS, ARGV[3]) or '') .. #line .. ':' .. line
local keep = tonumber(ARGV[6])
-- Count the lines by their lengths; drop the oldest beyond `keep`.
local starts = {}
local pos, size = 1, #text
while pos <= size do
  starts[#starts + 1] = pos
  local _, stop, len = string.find(text, '^(%d+):', pos)
  if not stop then break end
  pos = stop + tonumber(len) + 1
end
local n = #starts
if n > keep then
  text = string.sub(text, starts[n - keep + 1])
  n = keep
end
redis.call('HSET', K_LOGS, ARGV[3], text)
return {OK, n}
