--[[
  acquire.lua: take the lock now if it is free and nobody waits, else join the queue (or, in try
  mode, give up without joining). Idempotent per waiter id: running it again for a waiter that holds
  or is queued only reports that, so it is also how a waiter whose session lapsed re-enters.
  KEYS: see common.lua (owner, queue, sessions, counter)
  ARGV[1] waiter id "session:seq:leaseMs:renew"
  ARGV[2] liveness ms (the session's deadline is refreshed when it queues)
  ARGV[3] mode: "wait" or "try"
  ARGV[4] prefix (for the wake-up channel of a waiter granted while the dead owner is reaped)
  Returns:
    {1, now, token, exp}           granted (exp: lease deadline, Redis ms)
    {2, now, ticket, position, lapsed}  queued (position 1 = next); lapsed 1 when the session's
                                        liveness had run out before this call refreshed it (as in
                                        heartbeat.lua): the client must re-check its other waiters
    {0, now, ownerLeftMs}          busy (try mode only)
]]
local id, liveness, mode, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local now_us, now = clock()
local sid, lease, renew = parse_waiter(id)
if not sid then return redis.error_reply('FAIRLOCK_BADARG malformed waiter id') end

local o = owner_or_next(now, prefix)
if o and o.id == id then
  -- Granted by a hand-off whose wake-up this waiter did not use: it learns of it now.
  if o.c == '0' then o = confirm(o, now, prefix) end
  return { 1, now, o.token, o.exp }
end

-- Refreshing the session's liveness here would hide a lapse from its next heartbeat: report it.
local function refresh_session()
  local before = call('ZSCORE', K_SESSIONS, sid)
  call('ZADD', K_SESSIONS, now + liveness, sid)
  return ((not before) or tonumber(before) <= now) and 1 or 0
end

local ticket = call('ZSCORE', K_QUEUE, id)
if ticket then
  local lapsed = refresh_session()
  return { 2, now, tonumber(ticket), call('ZRANK', K_QUEUE, id) + 1, lapsed }
end

if not o then
  local t = next_ticket(now_us)
  write_owner({ id = id, token = t, exp = now + lease, lease = lease, renew = renew, g = now, prev = '-', c = '1' }, now)
  return { 1, now, t, now + lease }
end

if mode == 'try' then return { 0, now, o.exp - now } end

local t = next_ticket(now_us)
call('ZADD', K_QUEUE, t, id)
local lapsed = refresh_session()
keep_alive(K_QUEUE, liveness * 2)
keep_alive(K_SESSIONS, liveness * 2)
return { 2, now, t, call('ZCARD', K_QUEUE), lapsed }
