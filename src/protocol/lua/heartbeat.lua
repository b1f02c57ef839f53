--[[
  heartbeat.lua: one beat of one session on one name, O(1) in the number of its waiters.
  Refreshes the session's liveness, grants on if a holder's lease ran out, confirms the grants to
  this session (see "Lease start" in common.lua), renews the auto-renewed leases it names (a full
  lease from now), and reports this session's holders with the deadline each may use, so the client
  can recover a lost wake-up or learn that it lost a lease. Only the lease ids the client names are
  renewed: a grant of this session that the client no longer tracks (its release or cancel failed
  on a dropped connection) must run out like a dead holder's, not be renewed for as long as the
  session beats on this name for others. It also says whether the session had lapsed before this
  beat: its waiters may have been reaped as dead, so the client re-runs acquire.lua for each.
  KEYS: see common.lua (state, queue, sessions)
  ARGV[1] session id
  ARGV[2] liveness ms
  ARGV[3] wake: the prefix of the wake-up channels, or '' on a cluster (see common.lua)
  ARGV[4..] ids of the leases the session holds on this name, "-id" for a lease or wait it gave
            up whose release or cancel did not get through (it leaves the queue, or is released),
            and "?id" for the session's newest waiter on this name: when it is neither queued nor a
            holder, Redis lost it (a failover to a replica that had not received the enqueue, a
            restart without the data) and the beat reports a lapse, so every waiter runs acquire.lua
            again. Checking the newest suffices: a replica holds a prefix of the master's writes, so
            if the last enqueue survived, the earlier ones did too. On a cluster, "~" asks how many
            connections this node has on the session's shard channel of the name: 0 means the
            client's subscription did not follow the slot here (a migration or failover its client
            library missed), and the client subscribes again.
  Returns: {lapsed 0|1, now, {id1, token1, exp1, ...} of this session's holders, bad queue key or '',
  subscribers or -1}: the fourth element names the queue key when it is of the wrong type (the
  client then fails its waits; the leases are still renewed, the holders are not the key's
  victims); the fifth answers "~" (-1 when not asked, or when the user may not run PUBSUB)
]]
local sid, liveness, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
clock()
local before = call('ZSCORE', K_SESSIONS, sid)
local lapsed = (not before) or tonumber(before) <= now
-- Refresh first: this session is alive right now, so its waiter at the head may be granted below.
call('ZADD', K_SESSIONS, now + liveness, sid)
keep_alive(K_SESSIONS, liveness * 2)
-- Dead sessions go now: a name that never goes idle would otherwise keep every session it ever had.
call('ZREMRANGEBYSCORE', K_SESSIONS, '-inf', now)

local named, dropped, newest, subscribers = {}, {}, nil, -1
for i = 4, #ARGV do
  local c = string.sub(ARGV[i], 1, 1)
  if c == '-' then dropped[string.sub(ARGV[i], 2)] = true
  elseif c == '?' then newest = string.sub(ARGV[i], 2)
  elseif ARGV[i] == '~' then
    local r = redis.pcall('PUBSUB', 'SHARDNUMSUB', string.sub(K_STATE, 1, -7) .. ':wake:' .. sid)
    if type(r) == 'table' and r[2] then subscribers = r[2] end
  else named[ARGV[i]] = true end
end

local s = load()
local mine = sid .. ':'
local function serve()
  for id, h in pairs(s.holders) do
    if string.sub(id, 1, #mine) == mine then
      local renew = h.renew == '1'
      if dropped[id] then
        remove_holder(s, id)
        remember_release(s, id)
      elseif h.c == '0' and not named[id] then
        -- A grant whose wake-up this client has not taken (lost, late, or the waiter gave up): its
        -- holder learns of it from this reply, so its lease starts now, once.
        confirm(s, h)
      elseif h.c == '0' then
        h.c = '1'
        set_exp(s, h, renew and (now + h.lease) or (h.g + h.lease))
      elseif named[id] and renew and now + h.lease > h.exp then
        set_exp(s, h, now + h.lease)
      end
    end
  end
end

-- ZCARD, not a bare PEXPIRE (which works on any type): a queue key turned into another type is
-- reported at once, so this session's waits fail at this beat instead of hanging.
local queued = redis.pcall('ZCARD', K_QUEUE)
local bad_queue = type(queued) == 'table' and queued.err and string.sub(queued.err, 1, 9) == 'WRONGTYPE'
if type(queued) == 'table' and not bad_queue then return queued end -- the error reply (error() of a table fails on 6.2)
if bad_queue then
  serve()
else
  if queued > 0 then keep_alive(K_QUEUE, liveness * 2) end
  if newest and not s.holders[newest] and not call('ZSCORE', K_QUEUE, newest) then lapsed = true end
  for id in pairs(dropped) do call('ZREM', K_QUEUE, id) end
  serve()
  local n = s.n
  grant_ready(s, prefix)
  if s.n ~= n then serve() end -- grants made just now to this session are learned from this reply
end
if s.touch or s.n > 0 then s.touch = true end
flush(s)

local reply = {}
for id, h in pairs(s.holders) do
  if string.sub(id, 1, #mine) == mine then
    reply[#reply + 1] = id
    reply[#reply + 1] = h.token
    reply[#reply + 1] = usable_exp(h)
  end
end
return { lapsed and 1 or 0, now, reply, bad_queue and K_QUEUE or '', subscribers }
