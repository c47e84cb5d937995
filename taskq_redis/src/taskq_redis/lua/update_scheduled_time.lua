-- update_scheduled_time.lua: change a scheduled task's due time
-- (transition "update_scheduled_time").
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV: [1] queue name, [2] notification channel (unused), [3] task id,
--   [4] new due time (epoch seconds, stored as given).
-- Returns 1 when updated, 0 when the id is not scheduled or its data is
-- missing. Only the scheduled score and the scheduled_at part of the meta
-- change; the payload bytes stored beside it stay as they are.
-- Reads/writes: scheduled ZSET (ZSCORE, ZADD XX), tasks HASH field d:<id>.

local id, when_s = ARGV[3], ARGV[4]
if not score_in(SCHEDULED, id) then
  return 0
end
local payload, raw = read_data(id)
if not payload then
  return 0
end
redis.call("ZADD", KEYS[SCHEDULED], "XX", when_s, id)
local m = parse_meta(raw)
if m then
  m.scheduled_at = when_s
  write_data(id, m, payload)
end
return 1
