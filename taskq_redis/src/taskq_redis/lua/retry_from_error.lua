-- retry_from_error.lua: move a task from error to queued now, keeping its
-- execution records (transition "retry_from_error").
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV: [1] queue name, [2] notification channel, [3] task id.
-- Returns 1 when moved, 0 (nothing changes) when the id is not in error or
-- its data is missing. When a pending copy of a unique task exists, the
-- error copy is just dropped (the pending copy keeps its time); else the
-- task is queued now and the queue name published.
-- Reads/writes: the ZSETs, tasks HASH field d:<id>, the index SETs, counter.

local id = ARGV[3]
if not score_in(ERROR, id) then
  return 0
end
local payload, raw = read_data(id)
if not payload then
  return 0
end
remove(ERROR, id)
local _, now_s = server_now()
local m = parse_meta(raw) or salvage_meta(raw)
if not pending(id, m) then
  queue_task(id, m, now_s)
end
write_data(id, m, payload)
settle()
return 1
