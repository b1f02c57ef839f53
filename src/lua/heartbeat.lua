--[[
  heartbeat.lua: one beat of one session on one lock, O(1) in the number of its waiters.
  Refreshes the session's liveness, hands the lock on if the owner's lease ran out, confirms a grant
  to this session (see "Lease start" in common.lua: a named one ends at grant time + lease, an
  unnamed one at now + lease, never at the liveness deadline), renews the auto-renewed lease it
  names (a full lease from now), and reports the owner with the deadline its holder may use, so the
  client can recover a lost wake-up or learn that it lost its lease. Only the lease ids the client names are renewed: a grant of this session that
  the client no longer tracks (its release or cancel failed on a dropped connection) must run out
  like a dead holder's, not be renewed for as long as the session beats on this lock for others.
  A grant to one of the session's waiters is reported here and renewed from the next beat on. It also says whether the session had lapsed before this beat: its waiters may
  have been reaped as dead, so the client re-runs acquire.lua for each waiter it still has.
  KEYS: see common.lua (owner, queue, sessions, counter)
  ARGV[1] session id
  ARGV[2] liveness ms
  ARGV[3] prefix (wake-up channel)
  ARGV[4..] ids of the leases the session holds on this lock (usually none or one), and "-id" for a
            lease or wait it gave up whose release or cancel did not get through: it is removed
            from the queue, or released if it was granted
  Returns: {lapsed 0|1, now, owner id or "", owner token, owner exp[, bad queue key]}: the sixth
  element names the queue key when it is of the wrong type (the client then fails its waits)
]]
local sid, liveness, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
-- The deadline a holder may use: an unconfirmed grant may be cut back to g + lease by its confirmation.
local function usable_exp(o)
  if o.c == '0' then return math.min(o.exp, o.g + o.lease) end
  return o.exp
end
local _, now = clock()
local before = call('ZSCORE', K_SESSIONS, sid)
local lapsed = (not before) or tonumber(before) <= now
-- Refresh first: this session is alive right now, so its waiter at the head may be granted below.
call('ZADD', K_SESSIONS, now + liveness, sid)
keep_alive(K_SESSIONS, liveness * 2)
-- Dead sessions go now: a lock that never goes idle would otherwise keep every session it ever had.
call('ZREMRANGEBYSCORE', K_SESSIONS, '-inf', now)
-- ZCARD, not a bare PEXPIRE (which works on any type): a queue key turned into another type is
-- reported at once, so this session's waits fail at this beat instead of once the holder's lease has
-- run out; the beat still renews the holder's lease (the holder is not the key's victim).
local queued = redis.pcall('ZCARD', K_QUEUE)
local bad_queue = type(queued) == 'table' and queued.err and string.sub(queued.err, 1, 9) == 'WRONGTYPE'
if bad_queue then
  local o = read_owner()
  local held = o and sid_of(o.id) == sid and o.c == '1'
  if held and o.renew == '1' then
    for i = 4, #ARGV do
      if ARGV[i] == o.id and now + o.lease > o.exp then o = set_exp(o, now + o.lease, now, prefix) end
    end
  end
  if not o then return { lapsed and 1 or 0, now, '', 0, 0, K_QUEUE } end
  return { lapsed and 1 or 0, now, o.id, o.token, usable_exp(o), K_QUEUE }
end
if type(queued) == 'table' then error(queued) end
if queued > 0 then keep_alive(K_QUEUE, liveness * 2) end
-- "-id": a lease or wait of this session given up whose release or cancel did not get through
-- (beat until released): leave the queue, and hand the lock on below if it was granted.
for i = 4, #ARGV do
  if string.sub(ARGV[i], 1, 1) == '-' then call('ZREM', K_QUEUE, string.sub(ARGV[i], 2)) end
end
local o = owner_or_next(now, prefix)
if o and sid_of(o.id) == sid then
  for i = 4, #ARGV do
    if ARGV[i] == '-' .. o.id then
      local id = o.id
      o = grant_next(now, prefix, id)
      remember_release(id)
      break
    end
  end
end
if o and sid_of(o.id) == sid then
  local named = false
  for i = 4, #ARGV do
    if ARGV[i] == o.id then named = true end
  end
  if o.c == '0' and not named then
    -- A grant whose wake-up this client has not taken (lost, late, or the waiter gave up): its
    -- holder learns of it from this reply, so its lease starts now, once.
    o = confirm(o, now, prefix)
  elseif o.c == '0' then
    o.c = '1'
    o = set_exp(o, (o.renew == '1') and (now + o.lease) or (o.g + o.lease), now, prefix)
  elseif named and o.renew == '1' and now + o.lease > o.exp then
    o = set_exp(o, now + o.lease, now, prefix)
  end
end
if not o then return { lapsed and 1 or 0, now, '', 0, 0 } end
return { lapsed and 1 or 0, now, o.id, o.token, usable_exp(o) }
