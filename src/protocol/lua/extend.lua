--[[
  extend.lua: a holder sets its lease to end ms from now; later renewals use ms as the lease.
  KEYS: see common.lua (state, queue, sessions)
  ARGV[1] holder's waiter id
  ARGV[2] ms
  ARGV[3] wake: the prefix of the wake-up channels, or '' on a cluster (see common.lua)
  Returns: {1, now, exp} extended | {0, now} not a holder
]]
local id, ms, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
clock()
local s = load()
local h = s.holders[id]
if h then
  h.lease, h.g, h.c = ms, now, '1'
  set_exp(s, h, now + ms)
end
grant_ready(s, prefix)
flush(s)
if not h then return { REPLY_EXTEND_NOT_HOLDER, now } end
return { REPLY_EXTEND_EXTENDED, now, h.exp }
