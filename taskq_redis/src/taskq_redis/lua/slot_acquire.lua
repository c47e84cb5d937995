-- slot_acquire.lua: take or renew one of `limit` worker slots of a queue.
--
-- KEYS[1]  P:{T}:slots:<queue>  ZSET  member -> expiry (server time, epoch s)
--          members are worker ids, plus "SYSTEM_LOCK" while the queue's
--          system lock is set; the key expires with its last member.
-- ARGV: [1] worker id, [2] limit, [3] TTL in seconds.
-- Returns 1 when the worker holds a slot until now + TTL, 0 when the system
-- lock is set or `limit` other workers hold unexpired slots.
-- Expired members are removed first (server clock).

local worker, limit, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call("TIME")
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", string.format("%.6f", now))
if redis.call("ZSCORE", KEYS[1], "SYSTEM_LOCK") then
  return 0
end
local count = redis.call("ZCARD", KEYS[1])
if not redis.call("ZSCORE", KEYS[1], worker) then
  count = count + 1
end
if count > limit then
  return 0
end
redis.call("ZADD", KEYS[1], string.format("%.6f", now + ttl), worker)
local last = redis.call("ZRANGE", KEYS[1], -1, -1, "WITHSCORES")
redis.call("PEXPIREAT", KEYS[1], math.ceil(tonumber(last[2]) * 1000) + 1000)
return 1
