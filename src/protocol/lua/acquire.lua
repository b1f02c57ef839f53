--[[
  acquire.lua: take a grant now if the request fits and nobody waits, else join the queue (or, in
  try mode, give up without joining). Idempotent per waiter id: running it again for a waiter that
  holds or is queued only reports that, so it is also how a waiter whose session lapsed re-enters.
  KEYS: see common.lua (state, queue, sessions)
  ARGV[1] waiter id "session:seq:leaseMs:renew:weight:mode"
  ARGV[2] liveness ms (the session's deadline is refreshed when it queues)
  ARGV[3] "wait" or "try"
  ARGV[4] wake: the prefix of the wake-up channels, or '' on a cluster (see common.lua)
  ARGV[5] the name's kind and limit as the caller sees it, "lock 1" | "semaphore N" | "rw 0": an idle
          name takes it, a busy name with another one refuses the request
  Returns:
    {1, now, token, exp}                granted (exp: lease deadline, Redis ms)
    {2, now, ticket, position, lapsed}  queued (position 1 = next); lapsed 1 when the session's
                                        liveness had run out before this call refreshed it (as in
                                        heartbeat.lua): the client must re-check its other waiters
    {0, now, heldLeftMs}                busy (try mode only): the soonest holder deadline from now
    {4, now, "kind limit"}              refused: the busy name is of another kind or limit
]]
local id, liveness, mode, prefix, kl = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
clock()
local req = parse_id(id)
local kind, limit = string.match(kl or '', '^(%a+) (%d+)$')
if not (req and kind) then return redis.error_reply('FAIRLOCK_BADARG malformed waiter id or kind') end
limit = tonumber(limit)

-- Fast path: nobody queued and no holder entry in the state (its fields are at most t, k, r):
-- grant without loading and parsing the state (a third of the Lua time of an uncontended grant).
-- Anything else (a holder, a waiter, another kind, an over-weight request) takes the general path.
if call('EXISTS', K_QUEUE) == 0 then
  local f = call('HMGET', K_STATE, 't', 'k', 'r')
  local known = (f[1] and 1 or 0) + (f[2] and 1 or 0) + (f[3] and 1 or 0)
  if call('HLEN', K_STATE) == known and (not f[2] or f[2] == kl) and (req.mode ~= 'x' or req.weight <= limit) then
    local t = math.max((tonumber(f[1]) or 0) + 1, now_us)
    local exp = now + req.lease
    local args = { 'HSET', K_STATE, id, string.format('%d %d %d %d 1', t, exp, req.lease, now), 't', string.format('%d', t) }
    if not f[2] then args[#args + 1] = 'k'; args[#args + 1] = kl end
    call(unpack(args))
    call('PEXPIRE', K_STATE, math.max(STATE_TTL_MS, req.lease))
    return { REPLY_ACQUIRE_GRANTED, now, t, exp }
  end
end

local s = load()
if not s.k then s.kind, s.limit = kind, limit end
local empty = grant_ready(s, prefix)

local h = s.holders[id]
if h then
  -- Granted by a hand-off whose wake-up this waiter did not use: it learns of it now.
  if h.c == '0' then confirm(s, h) end
  flush(s)
  return { REPLY_ACQUIRE_GRANTED, now, h.token, h.exp }
end

-- Refreshing the session's liveness here would hide a lapse from its next heartbeat: report it.
local function refresh_session()
  local before = call('ZSCORE', K_SESSIONS, req.sid)
  call('ZADD', K_SESSIONS, now + liveness, req.sid)
  return ((not before) or tonumber(before) <= now) and 1 or 0
end

-- Waiters in the queue now (this one included, if it is a re-run for a queued waiter).
local waiting = empty and 0 or call('ZCARD', K_QUEUE)
empty = waiting == 0
if s.n == 0 and empty then
  if s.k ~= kl then s.k, s.kind, s.limit, s.dirty.k = kl, kind, limit, true end
elseif s.k and s.k ~= kl then
  flush(s)
  return { REPLY_ACQUIRE_REFUSED, now, s.k }
end
if req.mode == 'x' and req.weight > s.limit then
  return redis.error_reply('FAIRLOCK_BADARG weight ' .. req.weight .. ' is more than the limit ' .. s.limit)
end

if empty and fits(s, req) then
  local t = next_ticket(s)
  local g = { id = id, sid = req.sid, token = t, exp = now + req.lease, lease = req.lease, g = now, c = '1', weight = req.weight, mode = req.mode }
  add_holder(s, g)
  put_holder(s, g)
  flush(s)
  return { REPLY_ACQUIRE_GRANTED, now, t, g.exp }
end

if mode == 'try' then
  local ticket = (not empty) and call('ZSCORE', K_QUEUE, id)
  if ticket then
    flush(s)
    return { REPLY_ACQUIRE_QUEUED, now, tonumber(ticket), call('ZRANK', K_QUEUE, id) + 1, 0 }
  end
  flush(s)
  local soonest = 0
  for _, o in pairs(s.holders) do
    local left = usable_exp(o) - now
    if soonest == 0 or left < soonest then soonest = left end
  end
  return { REPLY_ACQUIRE_BUSY, now, soonest }
end

-- The session first: a sessions key of the wrong type then fails the script before the queue holds anything.
local lapsed = refresh_session()
local t = math.max(s.t + 1, now_us)
if call('ZADD', K_QUEUE, 'NX', t, id) == 0 then
  -- Already queued (a re-run after the session lapsed, or a retry): report where it stands; the
  -- ticket is not taken.
  flush(s)
  return { REPLY_ACQUIRE_QUEUED, now, tonumber(call('ZSCORE', K_QUEUE, id)), call('ZRANK', K_QUEUE, id) + 1, lapsed }
end
next_ticket(s)
keep_alive(K_QUEUE, liveness * 2)
keep_alive(K_SESSIONS, liveness * 2)
flush(s)
return { REPLY_ACQUIRE_QUEUED, now, t, waiting + 1, lapsed }
