--[[
  cancel.lua: a waiter gives up (timeout, abort, close). If the grant raced ahead of the cancel, the
  waiter is the owner now and this script releases it on the spot, handing the lock on.
  Safe to repeat.
  KEYS: see common.lua (owner, queue, sessions, counter)
  ARGV[1] waiter id
  ARGV[2] prefix (wake-up channel)
  Returns: {1, now} left the queue | {3, now} was granted, released now |
           {2, now} already released | {0, now} not found (never queued, or reaped as dead)
]]
local id, prefix = ARGV[1], ARGV[2]
local _, now = clock()
if call('ZREM', K_QUEUE, id) == 1 then return { 1, now } end
local o = owner_or_next(now, prefix)
if o and o.id == id then
  grant_next(now, prefix, id)
  remember_release(id)
  return { 3, now }
end
if (o and o.prev == id) or released_before(id) then return { 2, now } end
return { 0, now }
