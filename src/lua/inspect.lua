--[[
  inspect.lua: the holder and the live part of the queue, in order; read only. Waiters whose session
  stopped beating are left out (they are reaped lazily, when they reach the head).
  KEYS: see common.lua (owner, queue, sessions, counter)
  ARGV[1] the most queue entries to return
  Returns: {0, now, owner id or "", token, exp, {id1, ticket1, id2, ticket2, ...}}
]]
local limit = tonumber(ARGV[1])
local _, now = clock()
local o = read_owner()
local entries = call('ZRANGE', K_QUEUE, 0, -1, 'WITHSCORES')
local live, alive = {}, {}
for i = 1, #entries, 2 do
  if #live >= limit * 2 then break end
  local sid = sid_of(entries[i]) or ''
  if alive[sid] == nil then
    local d = sid and call('ZSCORE', K_SESSIONS, sid)
    alive[sid] = (d and tonumber(d) > now) or false
  end
  if alive[sid] then
    live[#live + 1] = entries[i]
    live[#live + 1] = entries[i + 1]
  end
end
if o then return { 0, now, o.id, o.token, o.exp, live } end
return { 0, now, '', 0, 0, live }
