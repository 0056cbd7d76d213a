-- Jobs: each job is one packed record, field <id> of the per-queue hash K_JOBS.

-- The job's record as a table and as the packed text stored, or nil when there is no job `id`.
local function load_job(id)
  local text = redis.call('HGET', K_JOBS, id)
  if not text then return nil end
  return decode(text), text
end

local function save_job(id, rec)
  redis.call('HSET', K_JOBS, id, encode(rec))
end

-- A job's state code: 'w' waiting (stored as no 's' field), 'd', 'a', 'c' or 'f'.
local function state_of(rec)
  return rec.s or 'w'
end
