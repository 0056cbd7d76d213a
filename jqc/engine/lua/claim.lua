-- claim: hand out up to N jobs to a worker under fresh fencing tokens.
--@include base, enqueue, claim
-- KEYS[1]  queue key prefix
-- ARGV[1]  now (ms)          ARGV[2] events cap
-- ARGV[3]  how many jobs at most (>= 1)
-- ARGV[4]  lock duration (ms)
-- ARGV[5]  worker id
-- Returns  {OK, lock_deadline_ms, id, token, fields, ...} or {EMPTY, next_due_ms|0} |
--          {PAUSED, 0} | {RATE_LIMITED, window_reopens_ms} | {CONCURRENCY_LIMITED, 0}
return claim(tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5])
