--[[
  inspect.lua: the holders and the live part of the queue, in order; read only. Waiters whose
  session stopped beating are left out (they are reaped lazily, when they reach the head).
  KEYS: see common.lua (state, queue, sessions)
  ARGV[1] the most queue entries to return
  Returns: {0, now, "kind limit" or "", {id1, token1, exp1, ...}, {id1, ticket1, id2, ticket2, ...}}
  (exp: the deadline the holder may use, see usable_exp)
]]
local limit = tonumber(ARGV[1])
clock()
local flat = call('HGETALL', K_STATE)
local k, holders = '', {}
for i = 1, #flat, 2 do
  local f, v = flat[i], flat[i + 1]
  if f == 'k' then k = v
  elseif f ~= 't' and f ~= 'r' then
    local token, exp, lease, g, c = string.match(v, '^(%d+) (%d+) (%d+) (%d+) ([01])$')
    if token then
      local h = { token = tonumber(token), exp = tonumber(exp), lease = tonumber(lease), g = tonumber(g), c = c }
      if h.exp > now then
        holders[#holders + 1] = f
        holders[#holders + 1] = h.token
        holders[#holders + 1] = usable_exp(h)
      end
    end
  end
end
local entries = call('ZRANGE', K_QUEUE, 0, -1, 'WITHSCORES')
local live, alive = {}, {}
for i = 1, #entries, 2 do
  if #live >= limit * 2 then break end
  local sid = string.match(entries[i], '^([^:]+):') or ''
  if alive[sid] == nil then alive[sid] = session_alive(sid) or false end
  if alive[sid] then
    live[#live + 1] = entries[i]
    live[#live + 1] = entries[i + 1]
  end
end
return { 0, now, k, holders, live }
