-- drop_expired_missing.lua: remove an expired active id whose task data is
-- missing (lost outside taskq). Not a transition: there is no task to move.
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV: [1] queue name, [2] notification channel (unused), [3] task id,
--   [4] older_than (epoch seconds).
-- Returns 1 when the id was removed from active, 0 (nothing changes) when it
-- is not active, its last heartbeat is not before older_than (its worker is
-- alive), or its payload (in d:<id>) exists.
-- Effects: the id leaves active (and the active index once that is empty)
-- and its owner o:<id> is deleted; its meta and records too, unless another
-- state still holds the id.
-- Reads/writes: the ZSETs, tasks HASH fields of the id, active index SET.

local id, older_than = ARGV[3], tonumber(ARGV[4])
local score = score_in(ACTIVE, id)
if not score or tonumber(score) >= older_than then
  return 0
end
if read_data(id) then
  return 0
end
remove(ACTIVE, id)
redis.call("HDEL", KEYS[TASKS], "o:" .. id)
local m = get_meta(id)
if not held(id, m) then
  delete_task(id, m)
end
settle()
return 1
