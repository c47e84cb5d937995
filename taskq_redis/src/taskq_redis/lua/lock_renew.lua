-- lock_renew.lua: extend a task lock we hold.
--
-- KEYS[1]  P:lock:<lock id>  STRING  the holder's token, with a TTL (PX)
-- ARGV: [1] token, [2] TTL in milliseconds.
-- Returns 1 when the lock held our token (its TTL is reset), else 0 (the
-- lock expired or another token holds it; nothing changes).

if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return 1
end
return 0
