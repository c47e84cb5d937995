-- heartbeat.lua: refresh the active score of tasks a worker owns.
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV:
--   [1] queue name, [2] notification channel (unused),
--   [3] worker id, [4...] task ids.
-- Returns the ids whose active score was set to the server's now: those
-- still active and owned (o:<id>) by the worker. Others are left alone, so a
-- heartbeat never brings back a task that was requeued or failed meanwhile.
-- Reads/writes: active ZSET (ZSCORE, ZADD XX), tasks HASH field o:<id>.

local worker = ARGV[3]
local _, now_s = server_now()
local refreshed = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  if score_in(ACTIVE, id) and redis.call("HGET", KEYS[TASKS], "o:" .. id) == worker then
    redis.call("ZADD", KEYS[ACTIVE], "XX", now_s, id)
    refreshed[#refreshed + 1] = id
  end
end
return refreshed
