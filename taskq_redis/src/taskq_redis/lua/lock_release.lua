-- lock_release.lua: release a task lock we hold.
--
-- KEYS[1]  P:lock:<lock id>  STRING  the holder's token, with a TTL (PX)
-- ARGV: [1] token.
-- Returns 1 when the lock held our token and was deleted, else 0 (nothing
-- changes: another holder's lock is never deleted).

if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("DEL", KEYS[1])
  return 1
end
return 0
