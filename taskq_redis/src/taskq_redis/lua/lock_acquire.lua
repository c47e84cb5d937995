-- lock_acquire.lua: take a task lock if it is free or already ours.
--
-- KEYS[1]  P:lock:<lock id>  STRING  the holder's token, with a TTL (PX)
-- ARGV: [1] token, [2] TTL in milliseconds.
-- Returns 1 when the lock is ours (taken now, or already held with this
-- token: its TTL is reset), 0 when another token holds it.

local token, ttl = ARGV[1], ARGV[2]
local holder = redis.call("GET", KEYS[1])
if holder == token then
  redis.call("PEXPIRE", KEYS[1], ttl)
  return 1
end
if holder then
  return 0
end
redis.call("SET", KEYS[1], token, "PX", ttl)
return 1
