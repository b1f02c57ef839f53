--[[
  release.lua: the holder gives the lock up; the first live waiter becomes the owner at once and is
  woken by one PUBLISH on its session's channel (the hand-off costs the releaser's one round trip).
  Safe to repeat: a second run for a release that already happened answers 2, not "not holder".
  KEYS: see common.lua (owner, queue, sessions, counter)
  ARGV[1] holder's waiter id
  ARGV[2] prefix (wake-up channel)
  Returns: {1, now} released | {2, now} already released by this id | {0, now} not the holder
]]
local id, prefix = ARGV[1], ARGV[2]
local _, now = clock()
local o = owner_or_next(now, prefix)
if o and o.id == id then
  grant_next(now, prefix, id)
  remember_release(id)
  return { 1, now }
end
if (o and o.prev == id) or released_before(id) then return { 2, now } end
return { 0, now }
