--[[
  heartbeat.lua: one beat of one session on one lock, O(1) in the number of its waiters.
  Refreshes the session's liveness, hands the lock on if the owner's lease ran out, renews the lease
  this session holds (auto-renew: a full lease from now; otherwise confirms an unconfirmed grant up to
  grant time + lease), and reports the owner so the client can recover a lost wake-up or learn that
  it lost its lease. Only the lease ids the client names are renewed: a grant of this session that
  the client no longer tracks (its release or cancel failed on a dropped connection) must run out
  like a dead holder's, not be renewed for as long as the session beats on this lock for others.
  A grant to one of the session's waiters is reported here and renewed from the next beat on. It also says whether the session had lapsed before this beat: its waiters may
  have been reaped as dead, so the client re-runs acquire.lua for each waiter it still has.
  KEYS: see common.lua (owner, queue, sessions, counter)
  ARGV[1] session id
  ARGV[2] liveness ms
  ARGV[3] prefix (wake-up channel)
  ARGV[4..] ids of the leases the session holds on this lock (usually none or one)
  Returns: {lapsed 0|1, now, owner id or "", owner token, owner exp}
]]
local sid, liveness, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local _, now = clock()
local before = call('ZSCORE', K_SESSIONS, sid)
local lapsed = (not before) or tonumber(before) <= now
-- Refresh first: this session is alive right now, so its waiter at the head may be granted below.
call('ZADD', K_SESSIONS, now + liveness, sid)
call('PEXPIRE', K_SESSIONS, liveness * 2)
call('PEXPIRE', K_QUEUE, liveness * 2)
local o = owner_or_next(now, prefix)
if not o then return { lapsed and 1 or 0, now, '', 0, 0 } end
local held = false
for i = 4, #ARGV do
  if ARGV[i] == o.id then held = true end
end
if held and sid_of(o.id) == sid then
  local exp = (o.renew == '1') and (now + o.lease) or (o.g + o.lease)
  if exp > o.exp then
    o.exp = exp
    write_owner(o, now)
  end
end
return { lapsed and 1 or 0, now, o.id, o.token, o.exp }
