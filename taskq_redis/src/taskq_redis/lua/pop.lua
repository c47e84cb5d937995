-- pop.lua: move up to `limit` queued tasks to active (transition "pop").
--
-- KEYS: the queue key set of _queue.lua (prepended), all of one slot:
--   KEYS[1] queued ZSET (id -> queued time), KEYS[2] scheduled ZSET (id ->
--   due time), KEYS[3] active ZSET (id -> heartbeat), KEYS[4] error ZSET
--   (id -> failure time), KEYS[5] tasks HASH (d:<id> payload, m:<id> meta,
--   o:<id> owner, x:<id>:<n> records), KEYS[6..9] per-root index SETs of
--   queue names (queued, scheduled, active, error), KEYS[10] sequence
--   counter STRING, KEYS[11] pop-order ZSET (-priority, time+seq+id).
-- ARGV:
--   [1] queue name, [2] notification channel (unused here),
--   [3] limit, [4] worker id, [5] defer seconds.
-- Returns {now, id1, payload1, meta1, id2, payload2, meta2, ...}: the tasks
-- now active (score = now, owner = worker id), in pop order (highest
-- priority first, then oldest), with their payload and meta string.
-- Candidates are taken from the pop-order zset (KEYS[11]) until `limit`
-- tasks are active or the queue is empty (an order member whose id is not
-- queued with that seq is stale and dropped):
--   * data missing (no d:<id>): removed from queued (and its leftovers
--     deleted if no state holds it any more), not returned;
--   * twin already active (unique task): moved to scheduled at
--     min(existing due time, now + defer), not returned;
--   * an error copy of the id is superseded (removed from error; its
--     execution records are kept).
-- Reads/writes: the ZSETs, the tasks HASH fields d:/m:/o:<id>, the index SETs.
-- The order zset is deleted once the queued zset is empty.

local limit, worker, defer = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local now, now_s = server_now()
local out = { now_s }
local popped = 0

while popped < limit do
  local members = redis.call("ZRANGE", KEYS[ORDER], 0, math.min(limit - popped, CHUNK) - 1)
  if #members == 0 then
    break
  end
  redis.call("ZREM", KEYS[ORDER], unpack(members))
  for _, member in ipairs(members) do
    local id = string.sub(member, ORDER_PREFIX + 1)
    local seq = tonumber(string.sub(member, 18, ORDER_PREFIX))
    local raw = redis.call("HMGET", KEYS[TASKS], "d:" .. id, "m:" .. id)
    local payload, m = raw[1], parse_meta(raw[2])
    if not score_of(QUEUED, id) or (m and tonumber(m.seq) ~= seq) then
      -- stale order member: the id left queued (or was queued again)
    elseif not payload then
      redis.call("ZREM", KEYS[QUEUED], id)
      if not held(id) then
        delete_task(id, m)
      end
    elseif score_of(ACTIVE, id) then
      redis.call("ZREM", KEYS[QUEUED], id)
      local target = now + defer
      local current = score_of(SCHEDULED, id)
      if not current or tonumber(current) > target then
        add(SCHEDULED, id, time_string(target))
      end
    else
      redis.call("ZREM", KEYS[QUEUED], id)
      if score_of(ERROR, id) then
        remove(ERROR, id)
      end
      redis.call("ZADD", KEYS[ACTIVE], now_s, id)
      redis.call("HSET", KEYS[TASKS], "o:" .. id, worker)
      out[#out + 1] = id
      out[#out + 1] = payload
      out[#out + 1] = raw[2] or ""
      popped = popped + 1
    end
  end
end
if redis.call("ZCARD", KEYS[QUEUED]) == 0 then
  redis.call("SREM", KEYS[QUEUED + INDEX_OFFSET], QUEUE)
  redis.call("DEL", KEYS[ORDER])
end
if popped > 0 then
  redis.call("SADD", KEYS[ACTIVE + INDEX_OFFSET], QUEUE)
end
return out
