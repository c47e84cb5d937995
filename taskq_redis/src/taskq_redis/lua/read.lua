-- read.lua: read tasks of one state (read-only; get_task and list_tasks).
--
-- KEYS: the queue key set (see _queue.lua).
-- ARGV: [1] queue name, [2] notification channel (unused),
--   [3] state number (1 queued, 2 scheduled, 3 active, 4 error),
--   [4] executions to load (newest n), [5] mode "range" or "ids",
--   range: [6] skip (from the lowest score), [7] limit;
--   ids:   [6...] task ids.
-- Returns {total, id, score, has_data, payload, meta, n, record1..recordn,
-- id, ...}: total = ZCARD of the state; then, for each id in the state (in
-- ascending time order for "range", for queued too: by queued time, then
-- first in; ids not in the state are left out for "ids"), its time (queued: the
-- queued time from the meta), "1"/"0" whether its payload exists, the payload
-- ("" when missing), the meta string ("" when missing) and its newest n
-- records, oldest first. Nothing read is trusted: a malformed queued member
-- is listed as an id of its own with no data (time 0); a queued task whose
-- meta is unreadable is found by its member (ZSCAN), and its records are
-- those its meta's record numbers still tell of.

local state, n_exec, mode = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]

-- The queued time of a task whose meta cannot say which member is its entry:
-- found by scanning for a member ending in the id (only for unreadable meta).
local function find_queued(id)
  local pattern = "*" .. string.gsub(id, "[%*%?%[%]\\]", "\\%0")
  local cursor = "0"
  repeat
    local reply = redis.call("ZSCAN", KEYS[QUEUED], cursor, "MATCH", pattern, "COUNT", 1000)
    cursor = reply[1]
    for i = 1, #reply[2], 2 do
      local member = reply[2][i]
      if member_ok(member) and string.sub(member, MEMBER_PREFIX + 1) == id then
        return time_string(tonumber(string.sub(member, 1, 17)) / 1000000)
      end
    end
  until cursor == "0"
  return nil
end
local out = { redis.call("ZCARD", KEYS[state]) }
local entries = {}
if mode == "range" then
  local skip, limit = tonumber(ARGV[6]), tonumber(ARGV[7])
  if limit > 0 and state == QUEUED then
    -- Time order: merge the priority runs (each already in time order, as
    -- members start with time and seq); usually there is just one run.
    local need = skip + limit
    local members = {}
    local runs = 0
    local head = redis.call("ZRANGE", KEYS[QUEUED], 0, 0, "WITHSCORES")
    local score = head[2]
    while score do
      local run = redis.call("ZRANGEBYSCORE", KEYS[QUEUED], score, score, "LIMIT", 0, need)
      for _, member in ipairs(run) do
        members[#members + 1] = member
      end
      runs = runs + 1
      score = redis.call("ZRANGEBYSCORE", KEYS[QUEUED], "(" .. score, "+inf", "WITHSCORES", "LIMIT", 0, 1)[2]
    end
    if runs > 1 then
      table.sort(members)
    end
    for i = skip + 1, math.min(need, #members) do
      local member = members[i]
      if member_ok(member) then
        -- the queued time, in microseconds (exactly: in the meta, see below)
        entries[#entries + 1] = {
          string.sub(member, MEMBER_PREFIX + 1),
          time_string(tonumber(string.sub(member, 1, 17)) / 1000000),
        }
      else
        -- a malformed entry: listed as itself, with no data (pop drops it)
        entries[#entries + 1] = { member, "0" }
      end
    end
  elseif limit > 0 then
    local flat = redis.call("ZRANGE", KEYS[state], skip, skip + limit - 1, "WITHSCORES")
    for i = 1, #flat, 2 do
      entries[#entries + 1] = { flat[i], flat[i + 1] }
    end
  end
else
  for i = 6, #ARGV do
    local id = ARGV[i]
    local score
    if state == QUEUED then
      local m = get_meta(id)
      if m then
        score = score_in(QUEUED, id, m)
      else
        score = find_queued(id)
      end
    else
      score = score_in(state, id)
    end
    if score then
      entries[#entries + 1] = { id, score }
    end
  end
end
for _, entry in ipairs(entries) do
  local id, score = entry[1], entry[2]
  local payload, raw = read_data(id)
  local m = parse_meta(raw)
  if state == QUEUED and m and m.queued_at ~= "" then
    score = m.queued_at
  end
  -- an unreadable meta still shows the records it tells of
  m = m or salvage_meta(raw)
  out[#out + 1] = id
  out[#out + 1] = score
  out[#out + 1] = payload and "1" or "0"
  out[#out + 1] = payload or ""
  out[#out + 1] = raw or ""
  local records = {}
  if n_exec > 0 and m.count >= m.first then
    local fields = {}
    for k = math.max(m.first, m.count - n_exec + 1), m.count do
      fields[#fields + 1] = "x:" .. id .. ":" .. k
    end
    records = redis.call("HMGET", KEYS[TASKS], unpack(fields))
  end
  out[#out + 1] = #records
  for _, record in ipairs(records) do
    out[#out + 1] = record or ""
  end
end
return out
