--[[
  release.lua: a holder gives its grant up; the waiters that now fit are granted at once and each is
  woken by one PUBLISH on its session's channel (the hand-off costs the releaser's one round trip).
  Safe to repeat: a second run for a release that already happened answers 2, not "not holder".
  KEYS: see common.lua (state, queue, sessions)
  ARGV[1] holder's waiter id
  ARGV[2] wake: the prefix of the wake-up channels, or '' on a cluster (see common.lua)
  Returns: {1, now} released | {2, now} already released by this id | {0, now} not a holder
]]
local id, prefix = ARGV[1], ARGV[2]
clock()

-- Fast path: nobody queued, so nobody to grant: delete our entry and remember the release without
-- loading and parsing the state. A holder whose deadline passed takes the general path.
if call('EXISTS', K_QUEUE) == 0 then
  local f = call('HMGET', K_STATE, id, 'r')
  local v, r = f[1], f[2]
  local exp = v and tonumber(string.match(v, '^%d+ (%d+) %d+ %d+ [01]$'))
  if exp and exp > now then
    call('HDEL', K_STATE, id)
    local s = { r = r or '', dirty = {} }
    remember_release(s, id)
    call('HSET', K_STATE, 'r', s.r)
    return { REPLY_RELEASE_RELEASED, now }
  end
end

local s = load()
local held = remove_holder(s, id)
if held then remember_release(s, id) end
grant_ready(s, prefix)
flush(s)
if held then return { REPLY_RELEASE_RELEASED, now } end
if released_before(s, id) then return { REPLY_RELEASE_ALREADY, now } end
return { REPLY_RELEASE_NOT_HOLDER, now }
