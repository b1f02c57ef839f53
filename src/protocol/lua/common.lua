--[[
  common.lua: the queue engine, prepended to every fairlock script except types.lua (not run alone).

  One engine serves the lock, the counting semaphore and the read-write lock. Every script gets the
  three keys of one name, all sharing one hash tag:
    KEYS[1] state     hash: t = last ticket handed out; k = "kind limit" of the name ("lock 1",
                      "semaphore 3", "rw 0"); r = the last ids that gave a grant up (newest first);
                      and one field per holder: its id -> "token exp lease granted confirmed"
    KEYS[2] queue     zset: waiter id -> ticket (microseconds from Redis TIME, strictly increasing)
    KEYS[3] sessions  zset: session id -> liveness deadline (ms, Redis clock)
  An id is "session:seq:leaseMs:renew:weight:mode" (mode x = permits, r = read, w = write): a
  request carries its own data, so the engine needs no extra key per waiter (an HSET + HGET + HDEL
  per waiter would cost more than one string.match).
  Every reply is {code, now, ...}: now is Redis's clock in ms, which bounds the client's clock offset.

  Grant rule (grant_ready): grant from the head of the queue while the head fits, stop at the first
  live waiter that does not. A permit request fits when used + weight <= limit, a read when no write
  is held, a write when nothing is held. Strict FIFO: a small request never passes a big one, a
  reader never passes a queued writer, so nobody starves. Dead waiters (their session stopped
  beating) are dropped when they reach the head.
  `used` is derived from the holder entries each time, never kept as a counter: a repeated release
  finds no entry and so frees nothing twice.
  Holders expire lazily: an entry whose deadline passed is dropped by the next script that loads the
  state, which then grants on. Lease start: an immediate grant is confirmed at once (the holder
  reads it in the reply). A hand-off grant is unconfirmed (confirmed = 0) and lives until the
  waiter's session liveness deadline, so a lost wake-up is still found by the next heartbeat; the
  session's first heartbeat (or acquire) confirms it: a grant the client names (it took the wake-up)
  then ends at granted + lease, one it does not name at beat time + lease. Never later.
  Wake-ups: the scripts that may grant take a `wake` argument. A prefix means one channel per session,
  "prefix:wake:SESSION", sent with PUBLISH (one Redis). An empty string (a cluster) means one channel
  per name and session, "prefix:{name}:wake:SESSION", in the name's slot, sent with SPUBLISH: the
  message stays in the shard that owns the name instead of going to every node.
  Commands go through plain redis.call: a key of the wrong type fails the script with WRONGTYPE, and
  the client then runs types.lua to name the key (the diagnosis costs nothing on the hot path).
]]
local K_STATE, K_QUEUE, K_SESSIONS = KEYS[1], KEYS[2], KEYS[3]
local STATE_TTL_MS = 86400000
local call = redis.call
local now_us, now

local function clock()
  local t = call('TIME')
  now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  now = math.floor(now_us / 1000)
end

local function parse_id(id)
  local sid, lease, renew, weight, mode = string.match(id, '^([^:]+):[^:]+:(%d+):([01]):(%d+):([xrw])$')
  if not sid then return nil end
  return { id = id, sid = sid, lease = tonumber(lease), renew = renew, weight = tonumber(weight), mode = mode }
end

-- A string, not an error table: Redis 6.2's error handler cannot take a table (it fails with "attempt
-- to concatenate ... a table value"), and the client finds the marker inside either version's text.
local function bad_state(detail)
  error('FAIRLOCK_BADKEY ' .. K_STATE .. ' ' .. detail)
end

local function add_holder(s, h)
  s.holders[h.id] = h
  s.n = s.n + 1
  s.used = s.used + h.weight
  if h.mode == 'w' then s.writer = true end
end

-- The fields of a holder entry load() left unparsed, filled in on first read (never over a field set since).
local LAZY = { __index = function(h, key)
  local token, _, lease, g, c = string.match(rawget(h, 'v'), '^(%d+) (%d+) (%d+) (%d+) ([01])$')
  local sid, renew = string.match(rawget(h, 'id'), '^([^:]+):[^:]+:%d+:([01]):')
  local fields = { token = tonumber(token), lease = tonumber(lease), g = tonumber(g), c = c, sid = sid, renew = renew }
  for k, v in pairs(fields) do
    if rawget(h, k) == nil then rawset(h, k, v) end
  end
  return rawget(h, key)
end }

-- The state of the name, holders whose deadline passed left out (and deleted at flush).
local function load()
  local flat = call('HGETALL', K_STATE)
  local s = { t = 0, r = '', holders = {}, n = 0, used = 0, writer = false, set = {}, del = {}, dirty = {} }
  for i = 1, #flat, 2 do
    local f, v = flat[i], flat[i + 1]
    if f == 't' then s.t = tonumber(v)
    elseif f == 'k' then s.k = v
    elseif f == 'r' then s.r = v
    else
      local exp = string.match(v, '^%d+ (%d+) %d+ %d+ [01]$')
      local weight, mode = string.match(f, '^[^:]+:[^:]+:%d+:[01]:(%d+):([xrw])$')
      if not (exp and weight) then bad_state('malformed entry ' .. f) end
      local h = setmetatable({ id = f, v = v, exp = tonumber(exp), weight = tonumber(weight), mode = mode }, LAZY)
      if h.exp > now then add_holder(s, h) else s.del[#s.del + 1] = f end
    end
  end
  s.kind, s.limit = string.match(s.k or '', '^(%a+) (%d+)$')
  s.limit = tonumber(s.limit) or 1
  return s
end

local function put_holder(s, h)
  s.set[h.id] = string.format('%d %d %d %d %s', h.token, h.exp, h.lease, h.g, h.c)
end

local function remove_holder(s, id)
  local h = s.holders[id]
  if not h then return nil end
  s.holders[id] = nil
  s.n = s.n - 1
  s.used = s.used - h.weight
  if h.mode == 'w' then s.writer = false end
  s.set[id] = nil
  s.del[#s.del + 1] = id
  return h
end

-- The last RELEASES_KEPT ids that gave a grant up, so that a repeated release or cancel answers
-- "already" also after other hand-offs happened in between.
local RELEASES_KEPT = 8
local function remember_release(s, id)
  -- prepend, then cut after the RELEASES_KEPT-th id: a few plain finds, no table, no gmatch
  local r = s.r == '' and id or (id .. ' ' .. s.r)
  local pos = 0
  for _ = 1, RELEASES_KEPT do
    pos = string.find(r, ' ', pos + 1, true)
    if not pos then break end
  end
  if pos then r = string.sub(r, 1, pos - 1) end
  s.r = r
  s.dirty.r = true
end

local function released_before(s, id)
  return string.find(' ' .. s.r .. ' ', ' ' .. id .. ' ', 1, true) ~= nil
end

-- Tickets are Redis time in microseconds, bumped past the last one: order = the order the scripts
-- ran, and a state lost with Redis's data restarts above every ticket handed out before.
local function next_ticket(s)
  s.t = math.max(s.t + 1, now_us)
  s.dirty.t = true
  s.touch = true
  return s.t
end

-- One HDEL and one HSET for everything the script changed; the TTL is refreshed when asked
-- (a new ticket, a renewal): at least a day, so that the ticket counter outlives idle spells, and
-- never shorter than the longest holder's deadline.
local function flush(s)
  if #s.del > 0 then call('HDEL', K_STATE, unpack(s.del)) end
  local args = {}
  for f, v in pairs(s.set) do
    args[#args + 1] = f
    args[#args + 1] = v
  end
  if s.dirty.t then args[#args + 1] = 't'; args[#args + 1] = string.format('%d', s.t) end
  if s.dirty.k then args[#args + 1] = 'k'; args[#args + 1] = s.k end
  if s.dirty.r then args[#args + 1] = 'r'; args[#args + 1] = s.r end
  if #args > 0 then call('HSET', K_STATE, unpack(args)) end
  if s.touch then
    local ttl = STATE_TTL_MS
    for _, h in pairs(s.holders) do
      if h.exp - now > ttl then ttl = h.exp - now end
    end
    call('PEXPIRE', K_STATE, ttl)
  end
end

-- A publish that fails (an ACL without that channel) is a lost wake-up: the heartbeat recovers it,
-- and the script's writes before it must not be reported as a failure.
local function wake(wake_arg, sid, message)
  if wake_arg == '' then
    redis.pcall('SPUBLISH', string.sub(K_STATE, 1, -7) .. ':wake:' .. sid, message)
  else
    redis.pcall('PUBLISH', wake_arg .. ':wake:' .. sid, message)
  end
end

local function fits(s, req)
  if req.mode == 'r' then return not s.writer end
  if req.mode == 'w' then return s.n == 0 end
  return s.used + req.weight <= s.limit
end

-- Nothing can fit (weights are at least 1): saves peeking at the queue on a held mutex.
local function full(s)
  return s.writer or (s.kind ~= 'rw' and s.used >= s.limit)
end

local function session_alive(sid)
  local d = call('ZSCORE', K_SESSIONS, sid)
  return d and tonumber(d) > now and tonumber(d)
end

-- The grant rule (see the header). In Redis a hand-off grant lasts until the waiter's session
-- liveness deadline; the wake-up tells the waiter min(that deadline, now + its lease), so its own
-- lease never ends after Redis's. Returns true when it saw the queue empty.
local function grant_ready(s, wake_arg)
  while not full(s) do
    local head = call('ZRANGE', K_QUEUE, 0, 0, 'WITHSCORES')
    if #head == 0 then return true end
    local req = parse_id(head[1])
    local alive = req and session_alive(req.sid)
    if alive and not fits(s, req) then return false end
    call('ZREM', K_QUEUE, head[1])
    if alive then
      req.token, req.exp, req.g, req.c = tonumber(head[2]), alive, now, '0'
      add_holder(s, req)
      put_holder(s, req)
      wake(wake_arg, req.sid, string.format('%s %d %d', req.id, req.token, math.min(req.exp, now + req.lease)))
    end
  end
  return false
end

-- Sets a holder's deadline; one that already passed ends the grant (the caller grants on).
local function set_exp(s, h, exp)
  h.exp = exp
  if exp > now then
    put_holder(s, h)
    s.touch = true
  else
    remove_holder(s, h.id)
  end
end

-- The holder has certainly learned of its grant now: its lease starts here (see the header).
local function confirm(s, h)
  h.c, h.g = '1', now
  set_exp(s, h, now + h.lease)
end

-- The deadline a holder may use: an unconfirmed grant may be cut back to g + lease by its confirmation.
local function usable_exp(h)
  if h.c == '0' then return math.min(h.exp, h.g + h.lease) end
  return h.exp
end

-- Shared keys: a session with a short liveness must not shorten the expiry that a session with a
-- longer one relies on (PEXPIRE alone would, and the queue could vanish under a live waiter).
local function keep_alive(key, ms)
  if call('PTTL', key) < ms then call('PEXPIRE', key, ms) end
end
