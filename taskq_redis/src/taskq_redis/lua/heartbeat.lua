-- heartbeat.lua: refresh the active score of tasks a worker owns.
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV:
--   [1] queue name, [2] notification channel (unused),
--   [3] worker id, [4...] task ids.
-- Returns the ids whose active score was set to the server's now: those
-- still active and owned (o:<id>) by the worker. Others are left alone, so a
-- heartbeat never brings back a task that was requeued or failed meanwhile.
-- The owners are read in one HMGET (per CHUNK ids); an owned id's score is
-- set with ZADD XX CH, whose reply says it was there (a ZSCORE only when the
-- score was already now).
-- Reads/writes: active ZSET (ZADD XX CH, ZSCORE), tasks HASH field o:<id>.

local worker = ARGV[3]
local _, now_s = server_now()
local refreshed = {}
for start = 4, #ARGV, CHUNK do
  local ids, fields = {}, {}
  for i = start, math.min(#ARGV, start + CHUNK - 1) do
    ids[#ids + 1] = ARGV[i]
    fields[#fields + 1] = "o:" .. ARGV[i]
  end
  local owners = redis.call("HMGET", KEYS[TASKS], unpack(fields))
  for k, id in ipairs(ids) do
    if owners[k] == worker then
      local changed = redis.call("ZADD", KEYS[ACTIVE], "XX", "CH", now_s, id)
      if changed == 1 or redis.call("ZSCORE", KEYS[ACTIVE], id) then
        refreshed[#refreshed + 1] = id
      end
    end
  end
end
return refreshed
