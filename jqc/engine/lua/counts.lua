-- counts: how many jobs are in each state, as one consistent snapshot (read only).
--@include base
--@keys meta wait prio delayed active completed failed dlq parked
-- ARGV[1]  now (ms, unused)  ARGV[2] events cap (unused)
-- Returns  {OK, waiting, delayed, active, completed, failed, dead, paused (1|0), waiting for children}
return {OK,
  redis.call('LLEN', K_WAIT) + redis.call('ZCARD', K_PRIO),
  redis.call('ZCARD', K_DELAYED),
  redis.call('ZCARD', K_ACTIVE),
  redis.call('ZCARD', K_COMPLETED),
  redis.call('ZCARD', K_FAILED),
  redis.call('ZCARD', K_DLQ),
  redis.call('HGET', K_META, 'paused') == '1' and 1 or 0,
  redis.call('ZCARD', K_PARKED)}
