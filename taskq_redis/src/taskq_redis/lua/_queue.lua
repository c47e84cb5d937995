-- _queue.lua: shared prelude of every per-queue script.
--
-- The loader prepends this file to each per-queue script (enqueue,
-- finish_pop, move_due, ...), so they all receive the same KEYS, "the queue
-- key set": the ten keys of one queue Q, all sharing the hash tag of Q's root
-- name ({T} below), hence one cluster slot. No key name is built here: keys
-- are only read from KEYS. This header is the one place that describes the
-- set: each per-queue script's header says "KEYS: the queue key set (see
-- _queue.lua)" and documents only its own ARGV, result and effects.
--
-- KEYS, the queue key set (P = the broker prefix, T = the escaped root of Q):
--   KEYS[1]  P:{T}:queued:Q     ZSET  the queued tasks in pop order:
--              score -priority; member <queued time in microseconds, 17
--              digits><seq, 13 digits><id>, so ascending (score, member)
--              is: highest priority first, then earliest queued, then
--              first in. The member is rebuilt from the task's meta.
--   KEYS[2]  P:{T}:scheduled:Q  ZSET  id -> due time (epoch seconds)
--   KEYS[3]  P:{T}:active:Q     ZSET  id -> last heartbeat (server time)
--   KEYS[4]  P:{T}:error:Q      ZSET  id -> failure time (server time)
--   KEYS[5]  P:{T}:tasks:Q      HASH  per task id:
--              "d:<id>"      the task's data: its meta string, a newline,
--                            then the payload bytes (opaque); the meta
--                            alone (no newline) once the payload was lost.
--                            meta = "priority|scheduled_at|time_last_queued|
--                            queued_at|seq|executions_count|first_stored|
--                            twins" (times kept as the exact strings
--                            received; queued_at and seq place it in
--                            KEYS[1]; twins "0": no other state holds the
--                            id, "1": another state may hold it)
--              "o:<id>"      owner worker id, while active
--              "x:<id>:<n>"  n-th execution record (msgpack), for
--                            first_stored <= n <= executions_count
--   KEYS[6]  P:{T}:queues:queued     SET  names of the root's queues with
--   KEYS[7]  P:{T}:queues:scheduled  SET  at least one task in that state
--   KEYS[8]  P:{T}:queues:active     SET  (kept exact by these scripts,
--   KEYS[9]  P:{T}:queues:error      SET  see settle below)
--   KEYS[10] P:{T}:seq               STRING  counter (INCR) for pop order
--
-- ARGV[1] is the queue name Q, ARGV[2] the notification channel; each script
-- documents its own ARGV from ARGV[3] on.
--
-- State numbers are KEYS indexes: the index set of state s is KEYS[s + 5].
--
-- Redis counts every command a script runs, so the helpers here avoid the
-- ones whose answer is already known: an index SET is touched only when its
-- zset may have become empty or non-empty (settle), a ZADD or ZREM reply
-- stands for a ZSCORE, and the end of a run of a task that no other state
-- holds (twins "0") deletes its fields without looking for copies.

local QUEUED, SCHEDULED, ACTIVE, ERROR = 1, 2, 3, 4
local TASKS, SEQ = 5, 10
local INDEX_OFFSET = 5
local MEMBER_PREFIX = 30 -- characters before the id in a queued member
local STATE_NAMES = { "queued", "scheduled", "active", "error" }
local CHUNK = 1000

local QUEUE = ARGV[1]
local CHANNEL = ARGV[2]
local notify = false

-- The server clock: a number for comparisons and an exact string to store.
local function server_now()
  local t = redis.call("TIME")
  local s = t[1] .. "." .. string.format("%06d", tonumber(t[2]))
  return tonumber(s), s
end

local function time_string(x)
  return string.format("%.6f", x)
end

-- -- meta ---------------------------------------------------------------------
--
-- Stored data may be damaged or written by someone else, so every script
-- checks what it parses before it changes anything: check_meta reads a meta
-- string only if every field is well-formed (the same rules as the broker's
-- Python side, taskq_redis/_meta.py):
--   priority          an integer in -1000..1000
--   scheduled_at,     "" or a finite decimal number (digits, sign, point,
--   time_last_queued  exponent; no spaces, hex, inf or nan)
--   queued_at, seq    both "" or both set: a time in (-1e10, 1e11) and an
--                     integer in 0..9999999999999 (they must fit the 30
--                     characters before the id in a queued member)
--   count, first      integers, count >= 0, 1 <= first <= count + 1, and at
--                     most a million records between them
--   twins             "0" or "1"
-- A task whose meta cannot be read is moved to error with an execution record
-- saying so (fail_unreadable), never queued again with made-up values.
--
-- twins is "1" from the moment a copy of the id is stored while data of the
-- id exists (an enqueue next to an active or error copy: the only move that
-- adds a copy; every other one moves or drops one), and "0" again once the end
-- of a run leaves a single copy. A meta made up or salvaged here says "1".

local META_PATTERN = "^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$"
local MAX_RECORDS = 1000000
local UNREADABLE_EXCEPTION = "taskq_core.exceptions:SerializationError"

local function new_meta()
  return {
    priority = "0",
    scheduled_at = "",
    time_last_queued = "",
    queued_at = "",
    seq = "",
    count = 0,
    first = 1,
    twins = "1",
  }
end

-- A printable excerpt of a stored value, for messages.
local function excerpt(value)
  local text = string.gsub(string.sub(value, 1, 40), "[^%w%.%+%-_]", "?")
  return "'" .. text .. "'"
end

-- An integer of at most 15 digits (exact as a Lua number), or nil.
local function parse_int(s)
  if #s > 16 or not string.find(s, "^%-?%d+$") then
    return nil
  end
  return tonumber(s)
end

-- A finite decimal number, or nil.
local function parse_number(s)
  if not string.find(s, "^[%d%.eE%+%-]+$") then
    return nil
  end
  local x = tonumber(s)
  if x == nil or x ~= x or x == math.huge or x == -math.huge then
    return nil
  end
  return x
end

local function records_ok(count, first)
  return count and first and count >= 0 and first >= 1 and first <= count + 1
    and count - first < MAX_RECORDS
end

-- The meta table of a meta string, or nil and what is wrong with it.
local function check_meta(raw)
  if not raw then
    return nil, "is missing"
  end
  local p, s, t, q, n, c, f, w = string.match(raw, META_PATTERN)
  if not p then
    return nil, "is not 8 fields separated by '|': " .. excerpt(raw)
  end
  local priority = parse_int(p)
  if not priority or priority < -1000 or priority > 1000 then
    return nil, "field 'priority' is not an integer in -1000..1000: " .. excerpt(p)
  end
  if s ~= "" and not parse_number(s) then
    return nil, "field 'scheduled_at' is not a number: " .. excerpt(s)
  end
  if t ~= "" and not parse_number(t) then
    return nil, "field 'time_last_queued' is not a number: " .. excerpt(t)
  end
  if (q == "") ~= (n == "") then
    return nil, "fields 'queued_at' and 'seq' are not both set or both empty"
  end
  if q ~= "" then
    local x = parse_number(q)
    if not x or x <= -1e10 or x >= 1e11 then
      return nil, "field 'queued_at' is not a time: " .. excerpt(q)
    end
    local seq = parse_int(n)
    if not seq or seq < 0 or #n > 13 then
      return nil, "field 'seq' is not an integer of at most 13 digits: " .. excerpt(n)
    end
  end
  local count, first = parse_int(c), parse_int(f)
  if not count or count < 0 then
    return nil, "field 'count' is not an integer >= 0: " .. excerpt(c)
  end
  if not records_ok(count, first) then
    return nil, "field 'first' is not a record number in 1..count+1: " .. excerpt(f)
  end
  if w ~= "0" and w ~= "1" then
    return nil, "field 'twins' is not 0 or 1: " .. excerpt(w)
  end
  return {
    priority = p,
    scheduled_at = s,
    time_last_queued = t,
    queued_at = q,
    seq = n,
    count = count,
    first = first,
    twins = w,
  }
end

-- The meta table of a meta string, or nil (missing or unreadable).
local function parse_meta(raw)
  return (check_meta(raw))
end

-- A fresh meta keeping what of an unreadable one can still be read: the
-- priority, the times and (so that no record is lost) the record numbers.
local function salvage_meta(raw)
  local m = new_meta()
  local p, s, t, _, _, c, f
  if raw then
    p, s, t, _, _, c, f = string.match(raw, META_PATTERN)
  end
  if not p then
    return m
  end
  local priority = parse_int(p)
  if priority and priority >= -1000 and priority <= 1000 then
    m.priority = p
  end
  if parse_number(s) then
    m.scheduled_at = s
  end
  if parse_number(t) then
    m.time_last_queued = t
  end
  local count, first = parse_int(c), parse_int(f)
  if records_ok(count, first) then
    m.count, m.first = count, first
  end
  return m
end

local function meta_string(m)
  return table.concat(
    { m.priority, m.scheduled_at, m.time_last_queued, m.queued_at, m.seq, m.count, m.first, m.twins },
    "|"
  )
end

-- -- data ---------------------------------------------------------------------
--
-- A task's payload and meta share one hash field, d:<id> = meta "\n" payload
-- (one field per task instead of two: about 130 bytes less per task). The
-- meta never holds a newline. What an outside writer may have left is read as
-- it would be in two fields: no newline = the meta alone (payload missing),
-- nothing before the newline = the payload alone (meta missing).

-- The payload and the meta string of a stored d:<id> value (each nil when
-- missing).
local function split_data(raw)
  if not raw then
    return nil, nil
  end
  local at = string.find(raw, "\n", 1, true)
  if not at then
    return nil, raw
  end
  local meta = nil
  if at > 1 then
    meta = string.sub(raw, 1, at - 1)
  end
  return string.sub(raw, at + 1), meta
end

-- Fields of deleted tasks (delete_task), deleted by flush_deletes in one
-- HDEL per CHUNK fields: before any write (write_data), before a pop reads
-- what it found queued (finish_pop), at the latest in settle.
local doomed = {}

local function flush_deletes()
  for i = 1, #doomed, CHUNK do
    redis.call("HDEL", KEYS[TASKS], unpack(doomed, i, math.min(#doomed, i + CHUNK - 1)))
  end
  doomed = {}
end

-- The payload and meta string of a task (each nil when missing).
local function read_data(id)
  return split_data(redis.call("HGET", KEYS[TASKS], "d:" .. id))
end

local function get_meta(id)
  local _, raw = read_data(id)
  return parse_meta(raw)
end

-- Store the task's meta `m` with its payload (nil: the meta alone, the
-- payload stays missing).
local function write_data(id, m, payload)
  flush_deletes() -- a write is never undone by an earlier delete
  local value = meta_string(m)
  if payload then
    value = value .. "\n" .. payload
  end
  redis.call("HSET", KEYS[TASKS], "d:" .. id, value)
end

-- Entries a script took out of a state because their data was missing or
-- unreadable: id, state number, reason, "1" if moved to error (else removed).
-- Scripts that drop entries return this list for the worker to log.
local dropped = {}

local function report(id, s, reason, to_error)
  dropped[#dropped + 1] = id
  dropped[#dropped + 1] = s
  dropped[#dropped + 1] = reason
  dropped[#dropped + 1] = to_error and "1" or "0"
end

-- Whether `s` is valid UTF-8 (task ids are text to the workers).
local function utf8_ok(s)
  if not string.find(s, "[\128-\255]") then
    return true
  end
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local extra, low, high = 0, 0x80, 0xBF
    if c < 0x80 then
      extra = 0
    elseif c >= 0xC2 and c <= 0xDF then
      extra = 1
    elseif c >= 0xE0 and c <= 0xEF then
      extra = 2
      if c == 0xE0 then
        low = 0xA0
      elseif c == 0xED then
        high = 0x9F
      end
    elseif c >= 0xF0 and c <= 0xF4 then
      extra = 3
      if c == 0xF0 then
        low = 0x90
      elseif c == 0xF4 then
        high = 0x8F
      end
    else
      return false
    end
    for k = 1, extra do
      local b = string.byte(s, i + k)
      if not b or b < low or b > high then
        return false
      end
      low, high = 0x80, 0xBF
    end
    i = i + extra + 1
  end
  return true
end

-- Whether a queued zset member has the 30-character time and seq prefix of
-- queued_member, followed by an id (UTF-8 text).
local function member_ok(member)
  return #member > MEMBER_PREFIX
    and string.find(string.sub(member, 1, 17), "^%-?%d+$") ~= nil
    and string.find(string.sub(member, 18, MEMBER_PREFIX), "^%d+$") ~= nil
    and utf8_ok(string.sub(member, MEMBER_PREFIX + 1))
end

-- -- states -------------------------------------------------------------------
--
-- The index SET of state s lists Q exactly when the zset of s is non-empty.
-- Instead of an SADD or a ZCARD and SREM on every change, a script notes what
-- it learns of each zset and settles the indexes once, at its end (settle):
--   held_at_start[s]  true when the first thing the script saw of s shows
--                     it held an entry then (so its index already lists Q,
--                     as it was exact before the script ran)
--   left[s]           after the script's last change to s: "nonempty",
--                     "empty" or "unknown" (a removal that may have emptied
--                     it: settle counts it)
-- A script that returns early must not have changed any zset before.

local held_at_start = {}
local left = {}

local function saw(s, present)
  if held_at_start[s] == nil then
    held_at_start[s] = present
  end
end

-- After a ZADD of one member to s (its reply: 1 new, 0 updated).
local function added(s, reply)
  saw(s, reply == 0)
  left[s] = "nonempty"
end

-- After a ZREM from s (its reply: how many were removed).
local function removed(s, n)
  saw(s, n > 0)
  if n > 0 then
    left[s] = "unknown"
  end
end

-- The queued zset member of a task, from its meta (nil if never queued).
local function queued_member(id, m)
  if m and m.seq ~= "" and m.queued_at ~= "" then
    return string.format("%017.0f%013d", tonumber(m.queued_at) * 1000000, tonumber(m.seq)) .. id
  end
  return nil
end

-- The id's score in state s (queued: its queued time, from m), or nil.
local function score_in(s, id, m)
  if s == QUEUED then
    local member = queued_member(id, m)
    if not member then
      return nil
    end
    local found = redis.call("ZSCORE", KEYS[QUEUED], member)
    saw(QUEUED, found ~= false)
    if found then
      return m.queued_at
    end
    return nil
  end
  local found = redis.call("ZSCORE", KEYS[s], id)
  saw(s, found ~= false)
  return found or nil
end

-- Add to scheduled, active or error (not queued: see queue_task).
local function add(s, id, score)
  added(s, redis.call("ZADD", KEYS[s], score, id))
end

-- Remove from scheduled, active or error; whether it was there.
local function remove(s, id)
  local n = redis.call("ZREM", KEYS[s], id)
  removed(s, n)
  return n == 1
end

-- Put a task in queued at time `ts_s` (the caller has checked it is not
-- pending, and stores the meta `m` afterwards).
local function queue_task(id, m, ts_s)
  m.queued_at = ts_s
  m.seq = tostring(redis.call("INCR", KEYS[SEQ]))
  added(QUEUED, redis.call("ZADD", KEYS[QUEUED], 0 - (tonumber(m.priority) or 0), queued_member(id, m)))
  notify = true
end

-- The pending copy's state and due time, or nil.
local function pending(id, m)
  local q = score_in(QUEUED, id, m)
  if q then
    return QUEUED, q
  end
  local s = score_in(SCHEDULED, id)
  if s then
    return SCHEDULED, s
  end
  return nil, nil
end

-- Whether some state still holds the id (so its data must be kept).
local function held(id, m)
  return score_in(QUEUED, id, m) or score_in(SCHEDULED, id) or score_in(ACTIVE, id) or score_in(ERROR, id)
end

-- -- executions and data ------------------------------------------------------

-- Delete the stored execution records first..last of a task.
local function drop_records(id, first, last)
  local fields = {}
  for n = first, last do
    fields[#fields + 1] = "x:" .. id .. ":" .. n
    if #fields == CHUNK then
      redis.call("HDEL", KEYS[TASKS], unpack(fields))
      fields = {}
    end
  end
  if #fields > 0 then
    redis.call("HDEL", KEYS[TASKS], unpack(fields))
  end
end

-- Append an execution record; keep only the newest max_stored ("" = all).
local function append_execution(id, m, record, max_stored)
  m.count = m.count + 1
  redis.call("HSET", KEYS[TASKS], "x:" .. id .. ":" .. m.count, record)
  if max_stored ~= "" then
    local oldest_kept = m.count - tonumber(max_stored) + 1
    if m.first < oldest_kept then
      drop_records(id, m.first, oldest_kept - 1)
      m.first = oldest_kept
    end
  end
end

-- Forget every record and the count (a successful run of a unique task).
local function reset_executions(id, m)
  drop_records(id, m.first, m.count)
  m.count = 0
  m.first = 1
end

-- Delete everything stored for a task (data, owner, records; see doomed); `m`
-- nil: the records that an unreadable meta still tells of.
local function delete_task(id, m)
  if not m then
    local _, raw = read_data(id)
    m = salvage_meta(raw)
  end
  doomed[#doomed + 1] = "d:" .. id
  doomed[#doomed + 1] = "o:" .. id
  for n = m.first, m.count do
    doomed[#doomed + 1] = "x:" .. id .. ":" .. n
    if #doomed >= CHUNK then
      flush_deletes()
    end
  end
end

-- The end of every script that changed something: bring each index SET in
-- line with its zset (a command only where it may be out of line), and
-- publish the queue name if a task was queued.
local function settle()
  flush_deletes()
  for s = QUEUED, ERROR do
    local state = left[s]
    if state then
      if state == "unknown" then
        state = redis.call("ZCARD", KEYS[s]) > 0 and "nonempty" or "empty"
      end
      if state == "empty" then
        redis.call("SREM", KEYS[s + INDEX_OFFSET], QUEUE)
      elseif not held_at_start[s] then
        redis.call("SADD", KEYS[s + INDEX_OFFSET], QUEUE)
      end
    end
  end
  if notify then
    redis.call("PUBLISH", CHANNEL, QUEUE)
  end
end

-- An execution record (msgpack, like the worker's) for a task failed here.
local function unreadable_record(message, now)
  return cmsgpack.pack({
    time_started = now,
    time_failed = now,
    exception_name = UNREADABLE_EXCEPTION,
    exception = message,
    traceback = message,
    success = false,
    host = "redis",
  })
end

-- Move a task whose stored data cannot be read to error, with a record saying
-- `message`; `m` is its salvaged meta (stored with `payload`, readable
-- again). The caller has taken it out of the state it was in.
local function fail_unreadable(id, m, payload, message, now, now_s)
  append_execution(id, m, unreadable_record(message, now), "")
  redis.call("HDEL", KEYS[TASKS], "o:" .. id)
  add(ERROR, id, now_s)
  write_data(id, m, payload)
end

-- -- moves --------------------------------------------------------------------

-- Make an ended run pending again. requeue: queued now when `when_s` is
-- "" or past, else scheduled at `when_s`; retry: scheduled at `when_s` (""
-- = now), even if past. An existing pending copy absorbs it instead: that
-- copy stays in its state and keeps the earlier of the two times.
local function make_pending(id, m, when_s, now, now_s, requeue)
  local target, due_s
  if not requeue then
    target, due_s = SCHEDULED, when_s
    if when_s == "" then
      due_s = now_s
    end
  elseif when_s == "" or tonumber(when_s) <= now then
    target, due_s = QUEUED, now_s
  else
    target, due_s = SCHEDULED, when_s
  end
  local state, current = pending(id, m)
  if state == QUEUED then
    if tonumber(due_s) < tonumber(current) then
      -- same seq, earlier time: a new member in the pop order
      redis.call("ZREM", KEYS[QUEUED], queued_member(id, m))
      m.queued_at = due_s
      added(QUEUED, redis.call("ZADD", KEYS[QUEUED], 0 - (tonumber(m.priority) or 0), queued_member(id, m)))
    end
  elseif state == SCHEDULED then
    if tonumber(due_s) < tonumber(current) then
      add(SCHEDULED, id, due_s)
    end
  elseif target == QUEUED then
    queue_task(id, m, due_s)
  else
    add(SCHEDULED, id, due_s)
  end
end

-- End an active run with `outcome` (done/retry/error/requeue); the caller has
-- checked that the id may be ended, removed it from active, and passes its
-- stored d:<id> value `data`.
local function end_active(id, data, outcome, when_s, record, max_stored, now, now_s)
  local payload, raw = split_data(data)
  local m, problem = check_meta(raw)
  if not m and outcome ~= "done" and data then
    -- the meta cannot be trusted to make it pending again: to error, with
    -- the run's record and one saying why
    m = salvage_meta(raw)
    if record ~= "" then
      append_execution(id, m, record, max_stored)
    end
    fail_unreadable(id, m, payload, "the task's metadata " .. problem, now, now_s)
    return
  end
  if m and record ~= "" then
    append_execution(id, m, record, max_stored)
  end
  if outcome == "done" then
    if m and m.twins == "0" then
      -- no other state holds the id: everything goes, nothing to look for
      delete_task(id, m)
      return
    end
    local has_error = score_in(ERROR, id)
    local state = pending(id, m)
    if state or has_error then
      redis.call("HDEL", KEYS[TASKS], "o:" .. id)
      if m then
        if not has_error then
          reset_executions(id, m)
        end
        if not (state and has_error) then
          m.twins = "0"
        end
        write_data(id, m, payload)
      end
    else
      delete_task(id, m)
    end
    return
  end
  redis.call("HDEL", KEYS[TASKS], "o:" .. id)
  m = m or new_meta()
  if outcome == "error" then
    add(ERROR, id, now_s)
  else
    make_pending(id, m, when_s, now, now_s, outcome == "requeue")
  end
  write_data(id, m, payload)
end

-- -- the worker's moves -------------------------------------------------------

-- End the run of `id` owned by `worker` (see end_active), given what its
-- o:<id> and d:<id> held (read with others in one HMGET); 1 if ended, 0
-- (nothing changed) when the id is not active or another worker owns it.
local function finish_run(id, worker, owner, data, outcome, when_s, record, max_stored, now, now_s)
  if owner ~= worker then
    return 0
  end
  if not remove(ACTIVE, id) then
    return 0
  end
  end_active(id, data, outcome, when_s, record, max_stored, now, now_s)
  return 1
end

-- A look at the head of queued: the first want + 1 members (one more than
-- wanted, to know whether taking them leaves the zset empty), the ids of the
-- first want (false: a malformed member) and, once read, their d:<id> values
-- (data[i]; nil: not read yet, false: missing).
local function peek_queued(want)
  local members = redis.call("ZRANGE", KEYS[QUEUED], 0, want)
  local n = math.min(#members, want)
  local ids = {}
  for i = 1, n do
    ids[i] = member_ok(members[i]) and string.sub(members[i], MEMBER_PREFIX + 1)
  end
  return { members = members, n = n, ids = ids, data = {} }
end

-- Read the d:<id> values a peek still lacks, in one HMGET.
local function read_peeked(head)
  local fields, at = {}, {}
  for i = 1, head.n do
    if head.ids[i] and head.data[i] == nil then
      fields[#fields + 1] = "d:" .. head.ids[i]
      at[#at + 1] = i
    end
  end
  if #fields > 0 then
    local got = redis.call("HMGET", KEYS[TASKS], unpack(fields))
    for k, i in ipairs(at) do
      head.data[i] = got[k]
    end
  end
end

-- Members this pop took out of queued and has not looked at yet: to the
-- checks below they are still queued.
local unseen = {}

-- Whether a member that does not match the task's meta is an old entry of a
-- task that lives on elsewhere (queued under its own member, or in another
-- state).
local function superseded(id, m)
  local own = queued_member(id, m)
  return (own and (unseen[own] or redis.call("ZSCORE", KEYS[QUEUED], own)))
    or score_in(SCHEDULED, id) or score_in(ACTIVE, id) or score_in(ERROR, id)
end

-- Make one member taken out of queued (its id, false if malformed, and its
-- d:<id> value) active for `worker`, appending id, payload and meta string to
-- `out` and its owner field to `owners`; or deal with what is wrong with it
-- (see finish_pop.lua). 1 if it became active, else 0.
local function activate(member, id, data, worker, defer, now, now_s, out, owners)
  if not id then
    report(member, QUEUED, "malformed queued entry (not time, sequence and id)", false)
    return 0
  end
  local payload, raw = split_data(data)
  local m, problem = check_meta(raw)
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
  else
    local new = redis.call("ZADD", KEYS[ACTIVE], "NX", now_s, id)
    if new == 1 then
      added(ACTIVE, 1)
      owners[#owners + 1] = "o:" .. id
      owners[#owners + 1] = worker
      out[#out + 1] = id
      out[#out + 1] = payload
      out[#out + 1] = raw
      return 1
    end
    -- a twin is already active (unique task): scheduled instead
    saw(ACTIVE, true)
    local target = now + defer
    local current = score_in(SCHEDULED, id)
    if not current or tonumber(current) > target then
      add(SCHEDULED, id, time_string(target))
    end
  end
  return 0
end

-- Move up to `limit` queued tasks to active for `worker`, in pop order; the
-- active ones are appended to `out` (id, payload, meta string). `head` is a
-- peek_queued(min(limit, CHUNK)) taken already, or nil. Per chunk of members:
-- one ZRANGE, one HMGET of their data, one ZREM; per task made active one
-- ZADD; the owners in one HSET at the end.
local function pop_tasks(limit, worker, defer, now, now_s, out, head)
  local owners = {}
  local popped = 0
  while popped < limit do
    head = head or peek_queued(math.min(limit - popped, CHUNK))
    read_peeked(head)
    local n = head.n
    saw(QUEUED, n > 0)
    if n == 0 then
      left[QUEUED] = "empty"
      break
    end
    local taken = { unpack(head.members, 1, n) }
    redis.call("ZREM", KEYS[QUEUED], unpack(taken))
    local more = #head.members > n
    left[QUEUED] = more and "nonempty" or "empty"
    for i = 1, n do
      unseen[taken[i]] = true
    end
    for i = 1, n do
      unseen[taken[i]] = nil
      popped = popped + activate(taken[i], head.ids[i], head.data[i], worker, defer, now, now_s, out, owners)
    end
    head = nil
    if not more then
      break
    end
  end
  for i = 1, #owners, 2 * CHUNK do
    redis.call("HSET", KEYS[TASKS], unpack(owners, i, math.min(#owners, i + 2 * CHUNK - 1)))
  end
end

-- ---------------------------------------------------------------------------
