-- purge_errors.lua: delete one chunk of tasks in error that failed before a
-- time (the client calls it until a chunk comes back short).
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV: [1] queue name, [2] notification channel (unused),
--   [3] older_than ("" = any time; else ids whose failure time is strictly
--   before it), [4] chunk size.
-- Returns how many ids were removed from error (ids whose data is missing
-- included). Each removed id's data, meta and records are deleted unless a
-- pending copy or an active twin still holds it. Deleted ids leave the zset,
-- so the next call starts again from the oldest: no entry is skipped.
-- Reads/writes: the ZSETs, tasks HASH fields of the ids, error index SET.

local older_than, chunk = ARGV[3], tonumber(ARGV[4])
local max = "+inf"
if older_than ~= "" then
  max = "(" .. older_than
end
local ids = redis.call("ZRANGEBYSCORE", KEYS[ERROR], "-inf", max, "LIMIT", 0, chunk)
if #ids == 0 then
  return 0
end
removed(ERROR, redis.call("ZREM", KEYS[ERROR], unpack(ids)))
for _, id in ipairs(ids) do
  local m = get_meta(id)
  if not held(id, m) then
    delete_task(id, m)
  end
end
settle()
return #ids
