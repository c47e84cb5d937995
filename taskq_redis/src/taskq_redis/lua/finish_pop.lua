-- finish_pop.lua: end runs a worker owns, then pop for it (transitions
-- "done", "retry_later", "fail", "lock_conflict", then "pop"), so that a
-- worker's outcomes and its next tasks take one script call.
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV:
--   [1] queue name, [2] notification channel,
--   [3] worker id, [4] limit (tasks to pop; 0 = no pop), [5] defer seconds,
--   [6] n, the number of runs to end, then per run five values:
--       task id, outcome ("done" | "retry" | "error" | "requeue"),
--       when ("" = now), execution record ("" = none),
--       max stored executions ("" = all).
-- Returns {ended, now, n, dropped..., id1, payload1, meta1, id2, ...}:
-- `ended` holds per run 1 when it was ended, 0 (nothing changed for it) when
-- the id is not active or its owner (o:<id>) is another worker; then the
-- server time, the entries the pop dropped (n values: per entry its id, state
-- number, reason, "1" if moved to error else "0"), then the tasks now active
-- (score = now, owner = worker id), in pop order (highest priority first,
-- then oldest), with their payload and meta string.
--
-- Ending a run (end_active in _queue.lua): the record is appended to
-- x:<id>:<n> and the count in the meta incremented, older records beyond the
-- cap deleted; then
--   done:    data and records deleted, unless a pending copy or an error
--            copy remains (records reset unless an error copy remains)
--   retry:   scheduled at `when` (even if past: due at once)
--   requeue: queued now (published), or scheduled at a future `when`
--   (retry and requeue: an existing pending copy absorbs the run instead,
--   staying in its state with the earlier of its time and the new one)
--   error:   error zset, score now.
-- The runs are ended in order, then the pop runs: candidates are taken from
-- the queued zset in pop order until `limit` tasks are active or the queue
-- is empty. Each taken member is removed from queued, then:
--   * malformed (not the time+seq+id of _queue.lua): dropped;
--   * data missing (no payload): dropped (and its leftovers deleted if no
--     state holds it any more);
--   * meta missing or unreadable (see check_meta): moved to error with an
--     execution record saying what is wrong;
--   * stale (the meta says another member is the task's entry, and that
--     entry is still queued or the task is in another state): dropped; if
--     the task is nowhere else, its meta is wrong: moved to error;
--   * twin already active (unique task): moved to scheduled at
--     min(existing due time, now + defer), not returned;
--   * an error copy of the id stays in error, with its time and records.
-- Commands: one HMGET reads every run's owner and data and the data of the
-- tasks at the head of queued; the fields of the tasks that are done go in
-- one HDEL, the owners of the tasks popped in one HSET (per 1000 each).
-- Reads/writes: the ZSETs, the tasks HASH fields d:/o:/x:<id>, the index
-- SETs, the counter (INCR, for a requeue); publishes the queue name when a
-- run was requeued.

local worker, limit, defer = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local runs = tonumber(ARGV[6])
local now, now_s = server_now()

-- One HMGET reads the owner and data of every run and the data of the tasks
-- at the head of queued (peeked before the runs end).
local fields = {}
for i = 0, runs - 1 do
  local id = ARGV[7 + 5 * i]
  fields[#fields + 1] = "o:" .. id
  fields[#fields + 1] = "d:" .. id
end
local head = nil
if limit > 0 then
  head = peek_queued(math.min(limit, CHUNK))
  for i = 1, head.n do
    if head.ids[i] then
      fields[#fields + 1] = "d:" .. head.ids[i]
    end
  end
end
local got = {}
if #fields > 0 then
  got = redis.call("HMGET", KEYS[TASKS], unpack(fields))
end

local ended, ran = {}, {}
for i = 0, runs - 1 do
  local at = 7 + 5 * i
  local id = ARGV[at]
  ran[id] = true
  ended[i + 1] = finish_run(
    id, worker, got[2 * i + 1], got[2 * i + 2], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4], now, now_s
  )
end
flush_deletes()

local out = {}
if limit > 0 then
  if left[QUEUED] then
    head = nil -- a run queued a task: look again
  else
    -- the data read before the runs, except of ids a run changed
    local k = 2 * runs
    for i = 1, head.n do
      if head.ids[i] then
        k = k + 1
        if not ran[head.ids[i]] then
          head.data[i] = got[k]
        end
      end
    end
  end
  pop_tasks(limit, worker, defer, now, now_s, out, head)
end
settle()
local result = { ended, now_s, #dropped }
for _, value in ipairs(dropped) do
  result[#result + 1] = value
end
for _, value in ipairs(out) do
  result[#result + 1] = value
end
return result
