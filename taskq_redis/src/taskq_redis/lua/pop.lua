-- pop.lua: move up to `limit` queued tasks to active (transition "pop").
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV:
--   [1] queue name, [2] notification channel (unused here),
--   [3] limit, [4] worker id, [5] defer seconds.
-- Returns {now, n, dropped..., id1, payload1, meta1, id2, payload2, meta2,
-- ...}: after the server time, the entries dropped (n values: per entry its
-- id, state number, reason, "1" if moved to error else "0"), then the tasks
-- now active (score = now, owner = worker id), in pop order (highest
-- priority first, then oldest), with their payload and meta string.
-- Candidates are taken from the queued zset in pop order until `limit`
-- tasks are active or the queue is empty. Each member is checked before
-- anything changes, then removed from queued:
--   * malformed (not the time+seq+id of _queue.lua): dropped;
--   * data missing (no d:<id>): dropped (and its leftovers deleted if no
--     state holds it any more);
--   * meta missing or unreadable (see check_meta): moved to error with an
--     execution record saying what is wrong;
--   * stale (the meta says another member is the task's entry, and that
--     entry is still queued or the task is in another state): dropped; if
--     the task is nowhere else, its meta is wrong: moved to error;
--   * twin already active (unique task): moved to scheduled at
--     min(existing due time, now + defer), not returned;
--   * an error copy of the id stays in error, with its time and records.
-- Reads/writes: the ZSETs, the tasks HASH fields d:/o:/x:<id>, the index
-- SETs.

local limit, worker, defer = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local now, now_s = server_now()
local out = {}
local popped = 0

-- Whether a member that does not match the task's meta is an old entry of a
-- task that lives on elsewhere (queued under its own member, or in another
-- state).
local function superseded(id, m)
  local own = queued_member(id, m)
  return (own and redis.call("ZSCORE", KEYS[QUEUED], own))
    or score_in(SCHEDULED, id) or score_in(ACTIVE, id) or score_in(ERROR, id)
end

while popped < limit do
  local members = redis.call("ZRANGE", KEYS[QUEUED], 0, math.min(limit - popped, CHUNK) - 1)
  if #members == 0 then
    break
  end
  for _, member in ipairs(members) do
    if not member_ok(member) then
      redis.call("ZREM", KEYS[QUEUED], member)
      report(member, QUEUED, "malformed queued entry (not time, sequence and id)", false)
    else
      local id = string.sub(member, MEMBER_PREFIX + 1)
      local payload, raw = read_data(id)
      local m, problem = check_meta(raw)
      redis.call("ZREM", KEYS[QUEUED], member)
      if not payload then
        if not held(id, m) then
          delete_task(id, m)
        end
        report(id, QUEUED, "its payload is missing", false)
      elseif not m then
        local message = "the task's metadata " .. problem
        fail_unreadable(id, salvage_meta(raw), payload, message, now, now_s)
        report(id, QUEUED, message, true)
      elseif queued_member(id, m) ~= member then
        if superseded(id, m) then
          report(id, QUEUED, "stale queued entry (the task was queued again or moved on)", false)
        else
          local message = "the task's metadata (queued_at, seq) does not match its queued entry"
          fail_unreadable(id, m, payload, message, now, now_s)
          report(id, QUEUED, message, true)
        end
      elseif score_in(ACTIVE, id) then
        local target = now + defer
        local current = score_in(SCHEDULED, id)
        if not current or tonumber(current) > target then
          add(SCHEDULED, id, time_string(target))
        end
      else
        redis.call("ZADD", KEYS[ACTIVE], now_s, id)
        redis.call("HSET", KEYS[TASKS], "o:" .. id, worker)
        out[#out + 1] = id
        out[#out + 1] = payload
        out[#out + 1] = raw
        popped = popped + 1
      end
    end
  end
end
tidy(QUEUED)
if popped > 0 then
  redis.call("SADD", KEYS[ACTIVE + INDEX_OFFSET], QUEUE)
end
local result = { now_s, #dropped }
for _, value in ipairs(dropped) do
  result[#result + 1] = value
end
for _, value in ipairs(out) do
  result[#result + 1] = value
end
return result
