--[[
  inspect.lua: the holders and the live part of the queue, in order; read only. Waiters whose
  session stopped beating are left out (they are reaped lazily, when they reach the head).
  KEYS: see common.lua (state, queue, sessions)
  ARGV[1] the most queue entries to return
  Returns: {0, now, "kind limit" or "", {id1, token1, exp1, ...}, {id1, ticket1, id2, ticket2, ...},
    {g1, g2, ...}, r}
  (exp: the deadline the holder may use, see usable_exp; g: each holder's grant time, in the order of
  the holders; r: the ids that last gave a grant up, newest first, space-separated, or '')
]]
local limit = tonumber(ARGV[1])
clock()
local flat = call('HGETALL', K_STATE)
local k, r, holders, granted = '', '', {}, {}
for i = 1, #flat, 2 do
  local f, v = flat[i], flat[i + 1]
  if f == 'k' then k = v
  elseif f == 'r' then r = v
  elseif f ~= 't' then
    local token, exp, lease, g, c = string.match(v, '^(%d+) (%d+) (%d+) (%d+) ([01])$')
    if token then
      local h = { token = tonumber(token), exp = tonumber(exp), lease = tonumber(lease), g = tonumber(g), c = c }
      if h.exp > now then
        holders[#holders + 1] = f
        holders[#holders + 1] = h.token
        holders[#holders + 1] = usable_exp(h)
        granted[#granted + 1] = h.g
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
return { 0, now, k, holders, live, granted, r }
