--[[
  cancel.lua: a waiter gives up (timeout, abort, close). If the grant raced ahead of the cancel, the
  waiter is a holder now and this script releases it on the spot. Either way the waiters that fit
  now are granted: a waiter that left the head may have been the one holding the others back.
  Safe to repeat.
  KEYS: see common.lua (state, queue, sessions)
  ARGV[1] waiter id
  ARGV[2] wake: the prefix of the wake-up channels, or '' on a cluster (see common.lua)
  Returns: {1, now} left the queue | {3, now} was granted, released now |
           {2, now} already released | {0, now} not found (never queued, or reaped as dead)
]]
local id, prefix = ARGV[1], ARGV[2]
clock()
local left = call('ZREM', K_QUEUE, id) == 1
local s = load()
local held = (not left) and remove_holder(s, id)
if held then remember_release(s, id) end
grant_ready(s, prefix)
flush(s)
if left then return { REPLY_CANCEL_LEFT, now } end
if held then return { REPLY_CANCEL_RELEASED, now } end
if released_before(s, id) then return { REPLY_CANCEL_ALREADY, now } end
return { REPLY_CANCEL_NOT_FOUND, now }
