--[[
  types.lua: run by the client after a script failed with WRONGTYPE, to name the key that is not what
  fairlock expects (the scripts use plain redis.call, so the error itself does not say which).
  KEYS: see common.lua (state, queue, sessions). Not prefixed with common.lua.
  Returns: {key, type} of the first key of the wrong type, or {} if every key is fine now.
]]
local expected = { 'hash', 'zset', 'zset' }
for i = 1, #KEYS do
  local t = redis.call('TYPE', KEYS[i])
  t = type(t) == 'table' and t.ok or t
  if t ~= 'none' and t ~= expected[i] then return { KEYS[i], t } end
end
return {}
