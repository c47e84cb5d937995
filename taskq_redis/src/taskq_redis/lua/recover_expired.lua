-- recover_expired.lua: end the run of an active task whose worker was lost
-- (transitions "requeue_expired", "fail_expired").
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV:
--   [1] queue name, [2] notification channel,
--   [3] task id, [4] older_than (epoch seconds),
--   [5] outcome: "done" | "retry" | "error" | "requeue",
--   [6] when ("" = now), [7] execution record ("" = none),
--   [8] max stored executions ("" = all).
-- Returns 1 when the task moved, 0 when it is not active or its last
-- heartbeat (active score) is not before older_than (its worker is alive).
-- Effects: as a run ended by finish_pop.lua (end_active in _queue.lua),
-- whoever owns the task.

local id, older_than, outcome = ARGV[3], tonumber(ARGV[4]), ARGV[5]
local when_s, record, max_stored = ARGV[6], ARGV[7], ARGV[8]

local score = score_in(ACTIVE, id)
if not score or tonumber(score) >= older_than then
  return 0
end
local now, now_s = server_now()
remove(ACTIVE, id)
end_active(id, redis.call("HGET", KEYS[TASKS], "d:" .. id), outcome, when_s, record, max_stored, now, now_s)
settle()
return 1
