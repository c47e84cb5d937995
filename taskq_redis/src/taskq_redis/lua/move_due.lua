-- move_due.lua: move due scheduled tasks to queued (transition
-- "scheduled_due").
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV:
--   [1] queue name, [2] notification channel, [3] limit.
-- Returns {moved, n, dropped...}: how many tasks moved, then the entries
-- dropped (n values: per entry its id, state number, reason, "1" if moved
-- to error). Up to `limit` ids with a due time <= the server's now are
-- taken, oldest due first; each is queued at its due time (its queued
-- score) and keeps its priority (from its meta), so it pops ahead of tasks of
-- its priority queued after it was due. One whose meta is unreadable (or
-- missing beside its payload), or whose due time cannot be a queued time,
-- is moved to error with an execution record saying so instead. The queue
-- name is published when any moved.
-- Reads/writes: scheduled/queued/error ZSETs, tasks HASH fields d:/x:<id>,
-- index SETs.

local limit = tonumber(ARGV[3])
local now, now_s = server_now()
local due = redis.call("ZRANGEBYSCORE", KEYS[SCHEDULED], "-inf", now_s, "WITHSCORES", "LIMIT", 0, limit)
if #due == 0 then
  -- nothing due: the index forgets the queue only if nothing is scheduled
  if redis.call("ZCARD", KEYS[SCHEDULED]) == 0 then
    redis.call("SREM", KEYS[SCHEDULED + INDEX_OFFSET], QUEUE)
  end
  return { 0, 0 }
end
local ids = {}
for i = 1, #due, 2 do
  ids[#ids + 1] = due[i]
end
removed(SCHEDULED, redis.call("ZREM", KEYS[SCHEDULED], unpack(ids)))
local moved = 0
for i = 1, #due, 2 do
  local id, ts = due[i], due[i + 1]
  local payload, raw = read_data(id)
  local m, problem = check_meta(raw)
  local message = problem and "the task's metadata " .. problem
  local due_at = parse_number(ts)
  if m and (not due_at or due_at <= -1e10) then
    m, message = nil, "its due time " .. excerpt(ts) .. " cannot be a queued time"
  end
  if not m and (raw or payload) then
    fail_unreadable(id, salvage_meta(raw), payload, message, now, now_s)
    report(id, SCHEDULED, message, true)
  else
    m = m or new_meta()
    if not score_in(QUEUED, id, m) then
      queue_task(id, m, ts)
      write_data(id, m, payload)
    end
    moved = moved + 1
  end
end
settle()
local result = { moved, #dropped }
for _, value in ipairs(dropped) do
  result[#result + 1] = value
end
return result
