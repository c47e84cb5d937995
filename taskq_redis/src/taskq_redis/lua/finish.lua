-- finish.lua: end an active run owned by a worker (transitions "done",
-- "retry_later", "fail", "lock_conflict").
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV:
--   [1] queue name, [2] notification channel,
--   [3] task id, [4] worker id,
--   [5] outcome: "done" | "retry" | "error" | "requeue",
--   [6] when ("" = now), [7] execution record ("" = none),
--   [8] max stored executions ("" = all).
-- Returns 1 when the run was ended, 0 (nothing changed) when the id is not
-- active or its owner (o:<id>) is another worker.
-- Effects (see end_active in _queue.lua): the record is appended to
-- x:<id>:<n> and the count in m:<id> incremented, older records beyond the
-- cap deleted; then
--   done:    data, meta and records deleted, unless a pending copy or an
--            error copy remains (records reset unless an error copy remains)
--   retry:   scheduled at `when` (even if past: due at once)
--   requeue: queued now (published), or scheduled at a future `when`
--   (retry and requeue: an existing pending copy absorbs the run instead,
--   staying in its state with the earlier of its time and the new one)
--   error:   error zset, score now.

local id, worker, outcome = ARGV[3], ARGV[4], ARGV[5]
local when_s, record, max_stored = ARGV[6], ARGV[7], ARGV[8]

if not score_in(ACTIVE, id) then
  return 0
end
if redis.call("HGET", KEYS[TASKS], "o:" .. id) ~= worker then
  return 0
end
local now, now_s = server_now()
end_active(id, outcome, when_s, record, max_stored, now, now_s)
finish_notify()
return 1
