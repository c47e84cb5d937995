-- pop.lua: move up to `limit` queued tasks to active (transition "pop").
--
-- KEYS: the queue key set of _queue.lua (prepended), all of one slot:
--   KEYS[1] queued ZSET (score -priority, member time+seq+id), KEYS[2]
--   scheduled ZSET (id -> due time), KEYS[3] active ZSET (id -> heartbeat),
--   KEYS[4] error ZSET (id -> failure time), KEYS[5] tasks HASH (d:<id>
--   payload, m:<id> meta, o:<id> owner, x:<id>:<n> records), KEYS[6..9]
--   per-root index SETs of queue names (queued, scheduled, active, error),
--   KEYS[10] sequence counter STRING.
-- ARGV:
--   [1] queue name, [2] notification channel (unused here),
--   [3] limit, [4] worker id, [5] defer seconds.
-- Returns {now, id1, payload1, meta1, id2, payload2, meta2, ...}: the tasks
-- now active (score = now, owner = worker id), in pop order (highest
-- priority first, then oldest), with their payload and meta string.
-- Candidates are taken from the queued zset in pop order until `limit`
-- tasks are active or the queue is empty (a member that does not match its
-- task's meta is stale and dropped):
--   * data missing (no d:<id>): removed from queued (and its leftovers
--     deleted if no state holds it any more), not returned;
--   * twin already active (unique task): moved to scheduled at
--     min(existing due time, now + defer), not returned;
--   * an error copy of the id stays in error, with its time and records.
-- Reads/writes: the ZSETs, the tasks HASH fields d:/m:/o:<id>, the index SETs.

local limit, worker, defer = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local now, now_s = server_now()
local out = { now_s }
local popped = 0

while popped < limit do
  local members = redis.call("ZRANGE", KEYS[QUEUED], 0, math.min(limit - popped, CHUNK) - 1)
  if #members == 0 then
    break
  end
  redis.call("ZREM", KEYS[QUEUED], unpack(members))
  for _, member in ipairs(members) do
    local id = string.sub(member, MEMBER_PREFIX + 1)
    local raw = redis.call("HMGET", KEYS[TASKS], "d:" .. id, "m:" .. id)
    local payload, m = raw[1], parse_meta(raw[2])
    if m and queued_member(id, m) ~= member then
      -- stale member: the task was queued again since
    elseif not payload then
      if not held(id, m) then
        delete_task(id, m)
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
      out[#out + 1] = raw[2] or ""
      popped = popped + 1
    end
  end
end
tidy(QUEUED)
if popped > 0 then
  redis.call("SADD", KEYS[ACTIVE + INDEX_OFFSET], QUEUE)
end
return out
