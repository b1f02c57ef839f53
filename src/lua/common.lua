--[[
  common.lua: helpers prepended to every fairlock script (not run on its own).

  Every script gets the same four keys of one lock, all sharing one hash tag:
    KEYS[1] owner     string "id token exp lease renew granted prev confirmed" with PX = exp - now
    KEYS[2] queue     zset   waiter id -> ticket (microseconds from Redis TIME, strictly increasing)
    KEYS[3] sessions  zset   session id -> liveness deadline (ms, Redis clock)
    KEYS[4] counter   hash   t = last ticket handed out, r = the last ids that gave the lock up (newest first)
  A waiter id is "session:seq:leaseMs:renew" so a hand-off knows the lease to grant and the channel to wake.
  Every reply is {code, now, ...}: now is Redis's clock in ms, which the client uses to bound the
  clock offset.
  Invariant: a non-empty queue always has an owner, except after the owner's key expired on its own;
  every script that can notice that (acquire, release, heartbeat) hands the lock on first.
  Lease start: a lease starts when its holder can know of it. An immediate grant is confirmed at
  once (the holder reads it in the reply). A hand-off grant is unconfirmed (confirmed = 0) and lives
  until the waiter session's liveness deadline, so that a lost wake-up can still be found by the
  next heartbeat; the first heartbeat (or acquire) of that session confirms it: a grant the client
  names (it took the wake-up) then ends at granted + lease, one it does not name at beat time +
  lease (the lease starts now, when the holder learns it from the reply). Never later.
]]
local K_OWNER, K_QUEUE, K_SESSIONS, K_COUNTER = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local COUNTER_TTL_MS = 86400000

-- A key of the wrong type under our prefix must name itself and break nothing else. Other errors
-- (an ACL NOPERM, OOM) pass through as they are: they are not the key's fault.
local function call(cmd, key, ...)
  local r = redis.pcall(cmd, key, ...)
  if type(r) == 'table' and r.err then
    if string.sub(r.err, 1, 9) == 'WRONGTYPE' then
      error({ err = 'FAIRLOCK_BADKEY ' .. key .. ' ' .. r.err })
    end
    error(r)
  end
  return r
end

local function clock()
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  return us, math.floor(us / 1000)
end

local function parse_waiter(id)
  local sid, lease, renew = string.match(id, '^([^:]+):[^:]+:(%d+):([01])$')
  return sid, tonumber(lease), renew
end

local function read_owner()
  local v = call('GET', K_OWNER)
  if not v then return nil end
  local id, token, exp, lease, renew, g, prev, c =
    string.match(v, '^(%S+) (%d+) (%d+) (%d+) ([01]) (%d+) (%S+) ([01])$')
  if not id then error({ err = 'FAIRLOCK_BADKEY ' .. K_OWNER .. ' malformed owner value' }) end
  return { id = id, token = tonumber(token), exp = tonumber(exp), lease = tonumber(lease),
           renew = renew, g = tonumber(g), prev = prev, c = c }
end

-- %d keeps all digits: tostring() would turn a 16-digit token into 1.8e+15.
-- Callers make sure exp > now (a lease that already ended is handed on instead).
local function write_owner(o, now)
  call('SET', K_OWNER, string.format('%s %d %d %d %s %d %s %s', o.id, o.token, o.exp, o.lease, o.renew, o.g, o.prev, o.c),
    'PX', o.exp - now)
end

-- A publish that fails (an ACL without that channel) is a lost wake-up: the heartbeat recovers it,
-- and the script's writes before it must not be reported as a failure.
local function wake(channel, message)
  redis.pcall('PUBLISH', channel, message)
end

-- Tickets are Redis time in microseconds, bumped past the last one: order = order the scripts ran,
-- and a counter lost with Redis's data restarts above every ticket handed out before.
local function next_ticket(now_us)
  local last = tonumber(call('HGET', K_COUNTER, 't') or 0)
  local t = math.max(last + 1, now_us)
  call('HSET', K_COUNTER, 't', string.format('%d', t))
  call('PEXPIRE', K_COUNTER, COUNTER_TTL_MS)
  return t
end

-- Hands the lock to the first live waiter, or leaves it idle. In Redis the grant lasts until the
-- waiter's session liveness deadline: a waiter that died at the head costs no full lease, and a live
-- one's next heartbeat (due before that deadline) still finds the grant even if the wake-up was lost.
-- The wake-up tells the waiter min(that deadline, now + its lease): its own lease never ends after
-- Redis's. Returns the new owner or nil.
local function grant_next(now, prefix, prev)
  while true do
    local head = call('ZPOPMIN', K_QUEUE)
    if #head == 0 then
      call('DEL', K_OWNER, K_SESSIONS)
      return nil
    end
    local id, ticket = head[1], tonumber(head[2])
    local sid, lease, renew = parse_waiter(id)
    local alive = sid and call('ZSCORE', K_SESSIONS, sid)
    if alive and tonumber(alive) > now then
      local o = { id = id, token = ticket, exp = tonumber(alive), lease = lease, renew = renew, g = now, prev = prev, c = '0' }
      write_owner(o, now)
      wake(prefix .. ':wake:' .. sid, string.format('%s %d %d', id, o.token, math.min(o.exp, now + lease)))
      return o
    end
  end
end

-- The owner's key expires on its own when its lease runs out; hand on to the queue if it did.
local function owner_or_next(now, prefix)
  local o = read_owner()
  if not o and call('ZCARD', K_QUEUE) > 0 then
    o = grant_next(now, prefix, '-')
  end
  return o
end

-- Sets the owner's lease end. A lease that already ended is handed on at once, as if its key had
-- expired; returns the owner then in force (maybe another one, maybe nil).
local function set_exp(o, exp, now, prefix)
  o.exp = exp
  if exp > now then
    write_owner(o, now)
    return o
  end
  call('DEL', K_OWNER)
  return owner_or_next(now, prefix)
end

-- The holder has certainly learned of its grant now: its lease starts here (see the header).
local function confirm(o, now, prefix)
  o.c, o.g = '1', now
  return set_exp(o, now + o.lease, now, prefix)
end

-- The last RELEASES_KEPT ids that gave the lock up (released, or cancelled after a grant), so that
-- a repeated release answers "already" also after other hand-offs happened in between (the next
-- owner's `prev` only covers one). Best effort: the lock was already given up, so a failure here
-- must not make the release look failed.
local RELEASES_KEPT = 8
local function remember_release(id)
  local ok, list = pcall(redis.call, 'HGET', K_COUNTER, 'r')
  if not ok then return end
  local kept = { id }
  for other in string.gmatch(list or '', '%S+') do
    if #kept >= RELEASES_KEPT then break end
    if other ~= id then kept[#kept + 1] = other end
  end
  redis.pcall('HSET', K_COUNTER, 'r', table.concat(kept, ' '))
  redis.pcall('PEXPIRE', K_COUNTER, COUNTER_TTL_MS)
end

local function released_before(id)
  local list = call('HGET', K_COUNTER, 'r')
  return list and string.find(' ' .. list .. ' ', ' ' .. id .. ' ', 1, true) ~= nil
end

-- Shared keys: a session with a short liveness must not shorten the expiry that a session with a
-- longer one relies on (PEXPIRE alone would, and the queue could vanish under a live waiter).
local function keep_alive(key, ms)
  if call('PTTL', key) < ms then call('PEXPIRE', key, ms) end
end

local function sid_of(id)
  return string.match(id, '^([^:]+):')
end
