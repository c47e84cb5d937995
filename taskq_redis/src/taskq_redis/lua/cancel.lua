-- cancel.lua: remove a scheduled task (transition "cancel").
--
-- KEYS: the queue key set of _queue.lua (prepended), all of one slot:
--   KEYS[1] queued ZSET (score -priority, member time+seq+id), KEYS[2]
--   scheduled ZSET (id -> due time), KEYS[3] active ZSET (id -> heartbeat),
--   KEYS[4] error ZSET (id -> failure time), KEYS[5] tasks HASH (d:<id>
--   payload, m:<id> meta, o:<id> owner, x:<id>:<n> records), KEYS[6..9]
--   per-root index SETs of queue names (queued, scheduled, active, error),
--   KEYS[10] sequence counter STRING.
-- ARGV: [1] queue name, [2] notification channel (unused), [3] task id.
-- Returns 1 when removed, 0 when the id is not scheduled. The task's data,
-- meta and records are deleted unless a twin (active or error) still holds
-- the id.
-- Reads/writes: the ZSETs (ZSCORE, ZREM, ZCARD), tasks HASH fields of the
-- id, the scheduled index SET.

local id = ARGV[3]
if not remove(SCHEDULED, id) then
  return 0
end
local m = get_meta(id)
if not held(id, m) then
  delete_task(id, m)
end
return 1
