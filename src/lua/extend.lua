--[[
  extend.lua: the holder sets its lease to end ms from now; later renewals use ms as the lease.
  KEYS: see common.lua (owner, queue, sessions, counter)
  ARGV[1] holder's waiter id
  ARGV[2] ms
  Returns: {1, now, exp} extended | {0, now} not the holder
]]
local id, ms = ARGV[1], tonumber(ARGV[2])
local _, now = clock()
local o = read_owner()
if not (o and o.id == id) then return { 0, now } end
o.exp, o.lease, o.g, o.c = now + ms, ms, now, '1'
write_owner(o, now)
return { 1, now, o.exp }
