-- system_lock_get.lua: read a queue's system lock (read-only).
--
-- KEYS[1]  P:{T}:slots:<queue>  ZSET  member -> expiry (server time, epoch s)
--          (see slot_acquire.lua); this reads the "SYSTEM_LOCK" member.
-- ARGV: none.
-- Returns the lock's expiry time as a string while it is in the future
-- (server clock), else false (nil reply).

local expiry = redis.call("ZSCORE", KEYS[1], "SYSTEM_LOCK")
if not expiry then
  return false
end
local t = redis.call("TIME")
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if tonumber(expiry) <= now then
  return false
end
return expiry
