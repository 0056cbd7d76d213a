-- priority_counts: how many waiting jobs each priority has, as one snapshot (read only).
--@include base
--@keys wait prio
-- ARGV[1]  now (ms, unused)  ARGV[2] events cap (unused)
-- ARGV[3..] per priority asked, a pair: '' '' for priority 0 (the wait list), else the score
--          range of that priority in the prio set (min, exclusive max), computed by the caller
-- Returns  {OK, count of each priority asked, in order}
local out = {OK}
for i = 3, #ARGV - 1, 2 do
  if ARGV[i] == '' then
    out[#out + 1] = redis.call('LLEN', K_WAIT)
  else
    out[#out + 1] = redis.call('ZCOUNT', K_PRIO, ARGV[i], '(' .. ARGV[i + 1])
  end
end
return out
