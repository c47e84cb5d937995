-- delete.lua: remove a task in error (transition "delete").
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV: [1] queue name, [2] notification channel (unused), [3] task id.
-- Returns 1 when removed, 0 when the id is not in error. The task's data,
-- meta and records are deleted unless a pending copy or an active twin still
-- holds the id.
-- Reads/writes: the ZSETs (ZSCORE, ZREM, ZCARD), tasks HASH fields of the
-- id, the error index SET.

local id = ARGV[3]
if not remove(ERROR, id) then
  return 0
end
local m = get_meta(id)
if not held(id, m) then
  delete_task(id, m)
end
settle()
return 1
