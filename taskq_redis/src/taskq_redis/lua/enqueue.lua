-- enqueue.lua: store a task as queued or scheduled (transition "enqueue").
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV:
--   [1] queue name, [2] notification channel,
--   [3] task id, [4] payload bytes,
--   [5] due time ("" = now), [6] priority (integer string),
--   [7] "1" if unique else "0" (a pending copy blocks any id alike; a
--       unique request replaces its payload),
--   [8] max queue size ("" = none).
-- Returns {code, state, ts, size}:
--   code -1: refused: the queue already holds `size` >= max size tasks
--            (queued + scheduled + active); checked first, nothing written
--   code 0:  a pending copy (queued/scheduled) of the id exists; it keeps
--            its place (state, score, queued member, meta); a unique request
--            stores its payload in d:<id> (beside the meta), any other
--            changes nothing; state and ts are the copy's
--   code 1:  stored; state "queued" (ts = now) or "scheduled" (ts = when),
--            scheduled_at = ts (a past `when` is not kept); meta keeps the
--            count and records of an active/error twin (twins "1" when
--            data of the id or an owner o:<id> existed, else "0")
-- Only an id with stored data can have a pending copy (its meta locates the
-- queued entry), so a new id costs no lookup.
-- Reads/writes: the ZSETs (ZSCORE, ZCARD, ZADD), the tasks HASH field
-- d:<id> (and reads o:<id>), an index SET (SADD), the counter (INCR);
-- publishes the queue name when the task is queued.

local id, payload, when_s = ARGV[3], ARGV[4], ARGV[5]
local priority, max_size = ARGV[6], ARGV[8]
local now, now_s = server_now()

if max_size ~= "" then
  local queued = redis.call("ZCARD", KEYS[QUEUED])
  local size = queued + redis.call("ZCARD", KEYS[SCHEDULED]) + redis.call("ZCARD", KEYS[ACTIVE])
  if size >= tonumber(max_size) then
    return { -1, "", "", size }
  end
  saw(QUEUED, queued > 0)
end

local got = redis.call("HMGET", KEYS[TASKS], "d:" .. id, "o:" .. id)
local m
if got[1] then
  local _, raw = split_data(got[1])
  m = parse_meta(raw)
  local state, ts = pending(id, m)
  if state then
    if ARGV[7] == "1" then
      -- the meta part is kept as it is (even unreadable)
      redis.call("HSET", KEYS[TASKS], "d:" .. id, (raw or "") .. "\n" .. payload)
    end
    return { 0, STATE_NAMES[state], ts, 0 }
  end
end

m = m or new_meta()
m.twins = (got[1] or got[2]) and "1" or "0"
m.priority = priority
m.time_last_queued = now_s
local result
if when_s == "" or tonumber(when_s) <= now then
  m.scheduled_at = now_s
  queue_task(id, m, now_s)
  result = { 1, "queued", now_s, 0 }
else
  m.scheduled_at = when_s
  add(SCHEDULED, id, when_s)
  result = { 1, "scheduled", when_s, 0 }
end
write_data(id, m, payload)
settle()
return result
