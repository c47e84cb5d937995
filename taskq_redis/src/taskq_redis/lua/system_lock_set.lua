-- system_lock_set.lua: keep slot-using workers off a queue for a while.
--
-- KEYS[1]  P:{T}:slots:<queue>  ZSET  member -> expiry (server time, epoch s)
--          (see slot_acquire.lua); this sets the "SYSTEM_LOCK" member.
-- ARGV: [1] timeout in seconds.
-- Returns the lock's expiry time (server now + timeout) as a string. The key
-- expires with its last member.

local timeout = tonumber(ARGV[1])
local t = redis.call("TIME")
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local expiry = string.format("%.6f", now + timeout)
redis.call("ZADD", KEYS[1], expiry, "SYSTEM_LOCK")
local last = redis.call("ZRANGE", KEYS[1], -1, -1, "WITHSCORES")
redis.call("PEXPIREAT", KEYS[1], math.ceil(tonumber(last[2]) * 1000) + 1000)
return expiry
