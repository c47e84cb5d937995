-- move_due.lua: move due scheduled tasks to queued (transition
-- "scheduled_due").
--
-- KEYS: the queue key set of _queue.lua (prepended), all of one slot:
--   KEYS[1] queued ZSET (score -priority, member time+seq+id), KEYS[2]
--   scheduled ZSET (id -> due time), KEYS[3] active ZSET (id -> heartbeat),
--   KEYS[4] error ZSET (id -> failure time), KEYS[5] tasks HASH (d:<id>
--   payload, m:<id> meta, o:<id> owner, x:<id>:<n> records), KEYS[6..9]
--   per-root index SETs of queue names (queued, scheduled, active, error),
--   KEYS[10] sequence counter STRING.
-- ARGV:
--   [1] queue name, [2] notification channel, [3] limit.
-- Returns how many tasks moved. Up to `limit` ids with a due time <= the
-- server's now move, oldest due first; each is queued at its due time (its
-- queued score) and keeps its priority (from m:<id>), so it pops ahead of
-- tasks of its priority queued after it was due. The queue name is
-- published when any moved.
-- Reads/writes: scheduled/queued ZSETs, tasks HASH field m:<id>, index SETs.

local limit = tonumber(ARGV[3])
local _, now_s = server_now()
local due = redis.call("ZRANGEBYSCORE", KEYS[SCHEDULED], "-inf", now_s, "WITHSCORES", "LIMIT", 0, limit)
local moved = 0
for i = 1, #due, 2 do
  local id, ts = due[i], due[i + 1]
  redis.call("ZREM", KEYS[SCHEDULED], id)
  local m = get_meta(id) or new_meta()
  if not score_in(QUEUED, id, m) then
    queue_task(id, m, ts)
    set_meta(id, m)
  end
  moved = moved + 1
end
tidy(SCHEDULED)
finish_notify()
return moved
