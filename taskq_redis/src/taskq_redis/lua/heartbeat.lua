-- heartbeat.lua: refresh the active score of tasks a worker owns.
--
-- KEYS: the queue key set of _queue.lua (prepended), all of one slot:
--   KEYS[1] queued ZSET (score -priority, member time+seq+id), KEYS[2]
--   scheduled ZSET (id -> due time), KEYS[3] active ZSET (id -> heartbeat),
--   KEYS[4] error ZSET (id -> failure time), KEYS[5] tasks HASH (d:<id>
--   payload, m:<id> meta, o:<id> owner, x:<id>:<n> records), KEYS[6..9]
--   per-root index SETs of queue names (queued, scheduled, active, error),
--   KEYS[10] sequence counter STRING.
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
