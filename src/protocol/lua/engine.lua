--[[
  engine.lua: the queue engine of every fairlock name, one file. Loaded once as a Redis Function
  library on servers that have them (7.0+, Valkey), or run per call with EVALSHA (Redis 6.2, and a
  cluster): scripts.ts wraps this file either way, and each entry point of ENTRY below is one script.

  One engine serves the lock, the counting semaphore and the read-write lock. A name has two keys,
  sharing one hash tag (one cluster slot):
    state  hash, eight fields, each read by one HMGET per call:
      k  "kind limit" of the name ("lock 1", "semaphore 3", "rw 0"), or "semaphore permits perGroup"
      t  the last fencing token handed out (Redis microseconds, strictly increasing)
      h  the holders, "id token exp lease granted confirmed[ group]" joined by ';' (holder_text)
      r  the last RELEASES_KEPT ids that gave a grant up, newest first (a repeated release answers "already";
         RELEASES_KEPT and the reply codes come from codes.ts, prepended by scripts.ts)
      s  the sessions, "sid deadline" joined by ';': a session is alive until its deadline (Redis ms)
      x  when both keys expire (Redis ms): refreshed, with PEXPIREAT, only when less than half a day is left
      g  while groups take turns, "turns vtime": how many turns were given, and the virtual time (the
         pass of the group served last); absent (or '') otherwise
      b  a quorum name's copy of the born key's value (see "Quorum"); absent otherwise
    queue  list, FIFO: one element "id since" per waiter (since: Redis ms it entered the queue), or
           "id since floor" for a quorum waiter (see "Quorum")
  A group is sent as the hex of its UTF-8 bytes ('' is the default group, the requests that name none),
  so it is safe inside key names and holder entries. While only the default group queues, the queue
  list is all there is ("plain" mode: strict FIFO, exactly as without groups). Once a named group has
  to queue, the name takes turns ("group" mode, field g set) with three more kinds of keys, all under
  the name's hash tag, and all gone once nothing is queued or held (a group whose list empties stays
  a member of the rotation, keeping its pass, until it reaches the front: see activate):
    queue:<group>  list: that group's waiters, elements as in queue (the default group's stay in queue)
    queue:r        sorted set: the rotation, the groups with waiters; score: pass + tie (see turn_score)
    queue:p        sorted set: the groups passed over at their perGroup cap, each keeping its score
  A waiter id is "session:seq:leaseMs:renew:weight:mode" (mode x = permits, r = read, w = write): the
  request carries its own options, and the queue element is a string the client knows, so it can be
  found again (LPOS, LREM) without a record per waiter.
  Every reply is {code, now, ...}: now is Redis's clock in ms, which bounds the client's clock offset.

  Grant rule (grant_ready): pop the head of the queue while the name is not full; grant it if it fits,
  put it back and stop if it does not. In group mode (grant_groups) the head is the one of the front
  group of the rotation (the lowest pass): granted, its group's pass grows by the weight granted (with
  weights 1, to the back of the rotation), or it leaves the rotation, emptied; a group
  whose head would pass its perGroup cap is parked with its score, holding nobody back, and comes back
  to its place when one of its grants ends (unpark); a head that does not fit the free permits stops
  everyone, as in plain mode. A permit request fits when used + weight <= limit, a read when
  no write is held, a write when nothing is held. Strict FIFO: a small request never passes a big one,
  a reader never passes a queued writer. A waiter whose session is past its deadline is dropped when it
  reaches the head, and so is one already holding (an enqueue that ran twice).
  Holders expire lazily: load() leaves out an entry whose deadline passed and the next write drops it.
  Lease start: an immediate grant is confirmed at once (the holder reads it in the reply). A hand-off
  grant is unconfirmed (confirmed 0) and lives until its session's deadline, so a lost wake-up is still
  found by the next heartbeat; the session's first heartbeat (or acquire) confirms it: a grant the
  client names (it took the wake-up) then ends at granted + lease, one it does not name at beat + lease.
  Wake-ups: a grant publishes "id token exp" on the session's channel: wake_arg is "P" or "S" (PUBLISH
  on one Redis, SPUBLISH in the name's slot on a cluster) followed by the channel's prefix; the
  session id completes it (keys.ts builds the prefix).
  Cost: a contended acquisition is an enqueue (TIME, HMGET, RPUSH) and a hand-off release (TIME, HMGET,
  LPOP, HSET, PUBLISH); a session's deadline and the keys' expiry are written only when short.
  The common cases take fast paths that build no state table, each with the same writes as the
  general path (tests compare the two field by field): in plain mode, the uncontended acquire and
  release (an idle name, nobody queued: TIME, HMGET, LLEN or LPOP, HSET), the enqueue behind one
  holder, and the hand-off of a name the head of the queue fills alone (a lock's).
  Commands go through plain redis.call: a key of the wrong type fails the call with WRONGTYPE, and the
  client then runs the types script to name the key.

  Quorum (DESIGN §8, the chain over N independent masters): each master runs this engine; a quorum
  client passes two more arguments to acquire, and uses the commit entry. Without them every entry
  is the single-node one, reply for reply and command for command.
    floor (rule 2)  the highest token the chain's acquire got on the masters before this one. It rides
      in the waiter's element ("id since floor": cancel, the heartbeat's newest and given-up entries
      name it to find the element at once; without it the element is still found by its id) and
      bounds the token taken when the grant is made, immediate or hand-off: max(last + 1, floor),
      with `last` seeded from Redis time in µs only when the name has none (rule 1: a single-node
      grant takes max(last + 1, time) every time, but then every master's token would differ from
      the others' by its clock, and every quorum acquire would need a commit round). Never the
      enqueue's token: a commit between the enqueue and the grant raises `last` (mutation TICKET).
    commit (rule 4)  the holder raises `last` to the chain's token T and renews its lease.
    handover (rule 8, the contended case)  a quorum holder whose first grant came by a hand-off
      releases that master first, passing its grants on the others as "index=id" pairs; the waiter
      the release grants finds them at the end of its wake-up ("id token exp handover") and passes
      the id of the master it acquires next as that acquire's prev: the acquire releases prev first,
      as the old holder's own release arriving just before it would (the same writes, the grant
      rule run), then acquires. The old holder sends no release there itself: its heartbeat releases
      what no acquire did (the given-up ids). So a hand-off costs 3 engine calls, not 4.
    guardMs (rule 9)  a master that lost its data must grant nothing for a full lease, and the
      client cannot tell (it never saw the old run_id). The born key, KEYS[3] of a quorum acquire
      (`<prefix>:born`, a hash with one field b; no expiry, no hash tag: quorum masters are not a
      cluster), holds when this master served its first quorum call since its data was last lost.
      A quorum acquire that finds it missing sets it to now; until born + guardMs the guard holds the
      name: a holder entry of its own, GUARD_ID ("guard:0:0:0:1:w": a write, so nothing of any kind
      fits beside it; token 0), whose deadline is the guard's end. So every entry, whoever calls,
      grants nothing on the name meanwhile (acquires queue; try: busy), inspect shows it as a holder,
      and when it runs out the next call grants the head, as after a dead holder: the heartbeat
      always runs the grant rule. The reply to a quorum acquire carries the guard's end, so the
      client can beat right then. guardMs must be at least the longest lease of the quorum's
      clients. The first quorum use of a fresh server waits one guard as well (it cannot be told
      from a restart). guardMs 0 (or '') opts out, for a master that loses no acknowledged write (AOF
      with appendfsync always). Single-node callers pass no guardMs and never touch the born key; a
      name no quorum acquire reached during a guard is never held back, and nothing is added to the
      single-node paths (no field, no check: the guard is a holder).
      Tokens after the guard start from Redis time (the state was lost), which is above every earlier
      token as long as the masters' clocks (floors and commits carry other masters' tokens) are less
      than guardMs apart. A restart that keeps the born key but loses recent writes (an older RDB
      snapshot, AOF everysec) is not detected: such a master needs appendfsync always, or no
      persistence at all.
]]
local DAY = 86400000

-- The one pattern of a waiter id, "session:seq:leaseMs:renew:weight:mode"; its captures are
-- sid, lease, renew, weight, mode. An id stands alone (ID_ONLY), first in a queue element
-- ("id since" or "id since floor", ELEMENT: id, the id's five, since, floor or '') and first in a holder entry ("id token exp lease
-- granted confirmed", ENTRY: id, the id's five, exp).
local ID = '(%w+):%w+:(%d+):([01]):(%d+):([xrw])'
local ID_ONLY = '^' .. ID .. '$'
local ELEMENT = '^(' .. ID .. ') (%d+) ?(%d*)$'
local ENTRY = '^(' .. ID .. ') %d+ (%d+) %d+ %d+ [01] ?(%x*)$'
-- The fast paths' forms of the same shapes, capturing only what they use (each capture is a string
-- Redis's Lua hashes whole): a holder entry's id and exp; a holder entry's id, weight, mode and exp;
-- a queue element's id, sid, lease, weight, mode and floor.
local ENTRY_EXP = '^(%w+:%w+:%d+:[01]:%d+:[xrw]) %d+ (%d+) %d+ %d+ [01] ?%x*$'
local ENTRY_FIT = '^(%w+:%w+:%d+:[01]:(%d+):([xrw])) %d+ (%d+) %d+ %d+ [01] ?%x*$'
local ELEMENT_HEAD = '^((%w+):%w+:(%d+):[01]:(%d+):([xrw])) %d+ ?(%d*)$'
-- A quorum release's handover (see "Quorum"): "index=id" pairs joined by ',', at most MAX_HANDOVER
-- bytes (codes.ts).
local HANDOVER = '^[%w:=,]+$'
-- A group as sent: the hex of its bytes, at most 256 of them ('' = the default group).
local GROUP = '^%x*$'
local MAX_GROUP_HEX = 512

-- The number a text of digits from a call's arguments, the state or TIME, for the numbers that recur
-- call after call (a liveness, a lease, a weight, guardMs, when this master was born, the keys'
-- expiry, a session's deadline, the seconds of TIME): Redis's Lua converts a text with two strtod
-- calls, about 1,300 instructions, and a Function library keeps this table across calls (up to 256
-- texts, then anew). nil for nil or a text that is not a number.
local NUMS, nums_kept = {}, 0
local function num(text)
  if not text then return nil end
  local n = NUMS[text]
  if n == nil then
    n = tonumber(text) or false
    if nums_kept >= 256 then NUMS, nums_kept = {}, 0 end
    NUMS[text], nums_kept = n, nums_kept + 1
  end
  return n or nil
end

-- A request from the captures of ID (nil when they are): what the engine needs of a waiter.
local function request(id, sid, lease, renew, weight, mode)
  if not sid then return nil end
  return { id = id, sid = sid, lease = num(lease), renew = renew == '1', weight = num(weight), mode = mode }
end

local function parse_id(id)
  return request(id, string.match(id, ID_ONLY))
end

-- "kind limit" or "semaphore permits perGroup": the kind, the limit and the cap (nil for none).
-- Parsed texts are kept: an acquire reads its own and the name's (mostly the same), and as a
-- Function library the engine keeps them across calls (a few distinct texts; dropped past 64).
local KINDS, kinds_kept = {}, 0
local function parse_kind_limit(text)
  text = text or ''
  local known = KINDS[text]
  if known then return known[1], known[2], known[3] end
  local kind, limit, cap = string.match(text, '^(%a+) (%d+) ?(%d*)$')
  limit, cap = tonumber(limit), tonumber(cap)
  if kinds_kept >= 64 then KINDS, kinds_kept = {}, 0 end
  KINDS[text], kinds_kept = { kind, limit, cap }, kinds_kept + 1
  return kind, limit, cap
end

-- A string, not an error table: Redis 6.2's error handler cannot take a table, and the client finds
-- the marker inside either version's text.
local function bad_state(st, detail)
  error('FAIRLOCK_BADKEY ' .. st.key .. ' ' .. detail)
end

-- A holder as written in `h`; a loaded holder nothing changed keeps its text as it was read.
local function holder_text(h)
  if not h.changed then return h.raw end
  local text = string.format('%s %d %d %d %d %d', h.id, h.token, h.exp, h.lease, h.granted, h.confirmed)
  if h.group ~= '' then text = text .. ' ' .. h.group end
  return text
end

-- A loaded holder's token, lease, granted and confirmed are parsed from its entry on first use: the
-- contended paths (an enqueue behind a holder, a release that hands on) never read them.
local LAZY = { __index = function(h, key)
  local token, lease, g, c = string.match(rawget(h, 'raw'), '^%S+ (%d+) %d+ (%d+) (%d+) ([01])')
  local fields = { token = tonumber(token), lease = tonumber(lease), granted = tonumber(g), confirmed = tonumber(c) }
  for k, v in pairs(fields) do
    if rawget(h, k) == nil then rawset(h, k, v) end
  end
  return rawget(h, key)
end }

local function add_holder(st, h)
  st.holders[h.id] = h
  st.order[#st.order + 1] = h
  st.count = st.count + 1
  st.used = st.used + h.weight
  st.held[h.group] = (st.held[h.group] or 0) + h.weight
  if h.mode == 'w' then st.writer = true end
  st.dirty.h = true
end

local function remove_holder(st, h)
  st.holders[h.id] = nil
  h.gone = true
  st.count = st.count - 1
  st.used = st.used - h.weight
  st.held[h.group] = st.held[h.group] - h.weight
  st.freed[h.group] = true
  if h.mode == 'w' then st.writer = false end
  st.dirty.h = true
end

-- The rotation and the parked groups of group mode (see grant_groups): their names are made only there.
local function rot_key(st)
  return st.queue .. ':r'
end

local function park_key(st)
  return st.queue .. ':p'
end

-- Redis time now (µs and ms) and the state's fields as read (one TIME, one HMGET): what load() and
-- the fast paths start from.
local function read_state(keys)
  local t = redis.call('TIME')
  local now_us = num(t[1]) * 1000000 + tonumber(t[2])
  return now_us, math.floor(now_us / 1000), redis.call('HMGET', keys[1], 'k', 't', 'h', 'r', 's', 'x', 'g', 'b')
end

-- A field as read: missing (false) or written empty.
local function blank(v)
  return not v or v == ''
end

-- The name's state from read_state's results. Holders whose deadline passed are left out.
local function load(keys, now_us, now, f)
  local st = {
    key = keys[1], queue = keys[2], now = now, now_us = now_us,
    kind_limit = f[1] or false, token_text = f[2], released = f[4] or '', sessions = f[5] or '', expires_at = num(f[6]) or 0, born_text = f[8],
    seq = nil, vtime = 0, -- seq nil: plain mode
    holders = {}, order = {}, count = 0, used = 0, writer = false, dirty = {},
    held = {}, -- weights held per group
    freed = {}, -- groups whose grants ended in this call: a parked one may take its turn again
  }
  local kind, limit, cap = parse_kind_limit(st.kind_limit)
  st.kind, st.limit, st.cap = kind, limit or 1, cap
  if f[7] and f[7] ~= '' then
    local seq, vtime = string.match(f[7], '^(%d+) (%d+)$')
    if seq then st.seq, st.vtime = tonumber(seq), tonumber(vtime) end
  end
  if f[3] and f[3] ~= '' then
    for entry in string.gmatch(f[3], '[^;]+') do
      local id, sid, _, renew, weight, mode, exp, group = string.match(entry, ENTRY)
      if not id then bad_state(st, 'malformed holder entry ' .. entry) end
      local h = setmetatable({ id = id, sid = sid, renew = renew == '1', raw = entry, exp = tonumber(exp), weight = tonumber(weight), mode = mode, group = group, changed = false, gone = false }, LAZY)
      if h.exp > now then add_holder(st, h) else st.expired, st.freed[group] = true, true end
    end
  end
  st.dirty.h = st.expired -- loading changed nothing, unless it left an expired holder out
  return st
end

-- A session's deadline in the field s as `sessions` holds it, as written there (nil when unknown).
local function session_deadline_text(sessions, sid)
  -- a plain find of "sid ": it must start an entry (after ';' or at the start), never inside another sid
  local s, from = sessions, 1
  while true do
    local at = string.find(s, sid .. ' ', from, true)
    if not at then return nil end
    if at == 1 or string.byte(s, at - 1) == 59 then
      return string.match(s, '^%d+', at + #sid + 1)
    end
    from = at + 1
  end
end

-- A session's deadline (0 when unknown).
local function session_deadline(sessions, sid)
  return num(session_deadline_text(sessions, sid)) or 0
end

-- Sets a session's deadline; sessions past theirs are dropped from the field on the way.
local function set_session(st, sid, deadline)
  local out = {}
  for other, d in string.gmatch(st.sessions, '(%w+) (%d+)') do
    if other ~= sid and tonumber(d) > st.now then out[#out + 1] = other .. ' ' .. d end
  end
  out[#out + 1] = string.format('%s %d', sid, deadline) -- %d: `..` would format a float (%.14g)
  st.sessions = table.concat(out, ';')
  st.dirty.s = true
end

-- The released ids `released` (newest first) with `id` in front, the oldest past RELEASES_KEPT dropped.
local function released_with(released, id)
  local r = released == '' and id or (id .. ' ' .. released)
  local pos = 0
  for _ = 1, RELEASES_KEPT do
    pos = string.find(r, ' ', pos + 1, true)
    if not pos then break end
  end
  if pos then r = string.sub(r, 1, pos - 1) end
  return r
end

-- A holder gives its grant up (a release, a cancel the grant raced, a given-up id, a handed-over
-- grant): it goes, and its id joins the released ones (a repeated release answers "already").
local function give_back(st, h)
  remove_holder(st, h)
  st.released = released_with(st.released, h.id)
  st.dirty.r = true
end

-- `id` is among the released ids `released` (a plain find of the id, whole between spaces or the
-- ends: no copy of the list).
local function released_before(released, id)
  local r, from = released, 1
  while true do
    local at = string.find(r, id, from, true)
    if not at then return false end
    local after = at + #id
    if (at == 1 or string.byte(r, at - 1) == 32) and (after > #r or string.byte(r, after) == 32) then return true end
    from = at + 1
  end
end

-- Tokens are Redis time in microseconds, bumped past the last one: a state lost with Redis's data
-- restarts above every token handed out before. A quorum waiter's floor (the highest token its
-- acquire got on the masters before this one) is a lower bound too: max(last + 1, floor, now).
-- The last token handed out, 0 for none: parsed when first needed (a call that grants nothing never does).
local function last_token(st)
  if st.token == nil then st.token = tonumber(st.token_text) or 0 end
  return st.token
end

local function token_after(last, now_us, floor)
  if floor then -- a quorum waiter: time seeds `last` only when there is none (see "Quorum")
    return math.max(last > 0 and last + 1 or now_us, floor)
  end
  return math.max(last + 1, now_us)
end

local function next_token(st, floor)
  st.token = token_after(last_token(st), st.now_us, floor)
  st.dirty.t = true
  return st.token
end

-- The keys live at least half a day past now and past every holder's deadline (the token counter
-- outlives idle spells); x is moved a day on only when short, so most calls write no expiry.
-- The new expiry when x (`expires_at`) is short of half a day past now and past `latest` (the
-- holders' last deadline), else nil.
local function moved_expiry(expires_at, now, latest)
  local need = math.max(now + DAY / 2, latest)
  if expires_at >= need then return nil end
  return need + DAY / 2
end

local function keep_keys(st)
  local latest = 0
  for _, h in pairs(st.holders) do
    if h.exp > latest then latest = h.exp end
  end
  local moved = moved_expiry(st.expires_at, st.now, latest)
  if not moved then return end
  st.expires_at = moved
  st.dirty.x = true
end

-- One HSET for everything the call changed, then the expiry when it moved (a missing key is created
-- by the HSET first: PEXPIREAT on a key that does not exist does nothing).
local function flush(st)
  if not next(st.dirty) then return end
  keep_keys(st)
  local args = { 'HSET', st.key }
  local d = st.dirty
  if d.h then
    local out = {}
    for _, h in ipairs(st.order) do
      if not h.gone then out[#out + 1] = holder_text(h) end
    end
    args[#args + 1] = 'h'; args[#args + 1] = table.concat(out, ';')
  end
  if d.t then args[#args + 1] = 't'; args[#args + 1] = string.format('%d', st.token) end
  if d.k then args[#args + 1] = 'k'; args[#args + 1] = st.kind_limit end
  if d.r then args[#args + 1] = 'r'; args[#args + 1] = st.released end
  if d.s then args[#args + 1] = 's'; args[#args + 1] = st.sessions end
  if d.x then args[#args + 1] = 'x'; args[#args + 1] = string.format('%d', st.expires_at) end
  if d.b then args[#args + 1] = 'b'; args[#args + 1] = st.born_text end
  if d.g then args[#args + 1] = 'g'; args[#args + 1] = st.seq and string.format('%d %d', st.seq, st.vtime) or '' end
  redis.call(unpack(args))
  if d.x then
    redis.call('PEXPIREAT', st.key, st.expires_at)
    redis.call('PEXPIREAT', st.queue, st.expires_at)
    -- group mode: the rotation, the parked groups and every group's list move with them (twice a day)
    if st.seq then
      for _, z in ipairs({ rot_key(st), park_key(st) }) do
        redis.call('PEXPIREAT', z, st.expires_at)
        for _, g in ipairs(redis.call('ZRANGE', z, 0, -1)) do
          if g ~= '' then redis.call('PEXPIREAT', st.queue .. ':' .. g, st.expires_at) end
        end
      end
    end
  end
end

-- The fast paths' write (see acquire and release): one HSET of `args` (its field and value pairs) and,
-- when keep_keys' rule moves the keys' expiry, x with it and PEXPIREAT on both keys, as flush does.
local function write_fast(keys, args, expires_at, now, latest)
  local moved = moved_expiry(expires_at, now, latest)
  if moved then args[#args + 1] = 'x'; args[#args + 1] = string.format('%d', moved) end
  redis.call(unpack(args))
  if moved then
    redis.call('PEXPIREAT', keys[1], moved)
    redis.call('PEXPIREAT', keys[2], moved)
  end
end

-- The channel "wake_arg minus its first letter, then the session id"; a failed publish (an ACL
-- without that channel) is a lost wake-up, which the heartbeat recovers.
local function wake_channel(wake_arg, sid)
  return string.sub(wake_arg, 2) .. sid
end

local function wake(wake_arg, sid, message)
  local command = string.sub(wake_arg, 1, 1) == 'S' and 'SPUBLISH' or 'PUBLISH'
  redis.pcall(command, wake_channel(wake_arg, sid), message)
end

-- Taking `weight` more would put the group past the name's perGroup cap.
local function capped(st, group, weight)
  return st.cap ~= nil and (st.held[group] or 0) + weight > st.cap
end

local function fits(st, req)
  if req.mode == 'r' then return not st.writer end
  if req.mode == 'w' then return st.count == 0 end
  return st.used + req.weight <= st.limit and not capped(st, req.group, req.weight)
end

-- Nothing can fit (weights are at least 1): a held lock is not even peeked at.
local function full(st)
  return st.writer or (st.kind ~= 'rw' and st.used >= st.limit)
end

-- A key just created (an RPUSH or LPUSH that answered 1, a new rotation) has no expiry: it takes the
-- state's (set now if the state has none yet; when x moves, flush moves every key's).
local function expire_new(st, key)
  keep_keys(st)
  if not st.dirty.x then redis.call('PEXPIREAT', key, st.expires_at) end
end

-- The list of a group's waiters ('' = the default group's, the name's queue).
local function group_queue(st, group)
  if group == '' then return st.queue end
  return st.queue .. ':' .. group
end

-- A queue element as a request to grant, with its session's deadline; nil for one to drop: malformed,
-- holding already (an enqueue that ran twice), given up before, or of a session past its deadline.
local function live_request(st, e, group)
  local id, sid, lease, renew, weight, mode, _, floor = string.match(e, ELEMENT)
  local req = request(id, sid, lease, renew, weight, mode)
  if not req or st.holders[req.id] or released_before(st.released, req.id) then return nil end
  local deadline = session_deadline(st.sessions, req.sid)
  if deadline <= st.now then return nil end
  req.group, req.floor = group, tonumber(floor)
  return req, deadline
end

-- A hand-off grant: unconfirmed, it lives until its session's deadline (see "Lease start"). The
-- waiter `quiet` (an acquire granted in its own call, which learns it from the reply) is not woken.
local function grant(st, req, deadline, wake_arg, quiet)
  req.changed = true
  req.token, req.exp, req.granted, req.confirmed = next_token(st, req.floor), deadline, st.now, 0
  add_holder(st, req)
  if req.id ~= quiet then
    local message = string.format('%s %d %d', req.id, req.token, math.min(deadline, st.now + req.lease))
    if st.handover then -- a quorum release's handover (see "Quorum"): to the first waiter it wakes
      message, st.handover, st.handed = message .. ' ' .. st.handover, nil, true
    end
    wake(wake_arg, req.sid, message)
  end
end

-- Puts an element back at the head of its list (LPOP of the last element deleted the list: the one
-- LPUSH makes again needs an expiry).
local function put_back(st, key, e)
  if redis.call('LPUSH', key, e) == 1 then expire_new(st, key) end
end

-- Plain mode. Returns true when it saw the queue empty. `popped`: the head, when the caller popped it
-- already (release's fast path looked at it); it goes back if nothing is granted.
local function grant_plain(st, wake_arg, popped)
  while not full(st) do
    local e = popped or redis.call('LPOP', st.queue)
    popped = nil
    if not e then return true end
    local req, deadline = live_request(st, e, '')
    if req then
      if not fits(st, req) then
        put_back(st, st.queue, e)
        return false
      end
      grant(st, req, deadline, wake_arg)
    end
  end
  if popped then put_back(st, st.queue, popped) end
  return false
end

--[[
  The rotation is a virtual clock (stride scheduling): a group's pass is the permits it was granted
  while active, counted from the virtual time at which it became active; the front is the lowest
  pass. With weights all 1 this is plain round robin; with weights, backlogged groups get equal
  permits in the long run (one weight-3 grant costs a group three turns of weight 1). A group that
  becomes active starts at the current virtual time, so it is served within one turn of each
  other group and carries no credit from before; a group back from its perGroup cap takes one
  turn at the place it kept, then counts on from the virtual time (no run of the turns it missed).
  Equal passes are taken in turn order: the score is pass + tie, tie = (turns mod 2^20) / 2^20
  (exact while a pass stays below 2^32).
]]
local TIE = 1048576
local function turn_score(st, pass)
  st.seq, st.dirty.g = st.seq + 1, true
  return string.format('%.17g', pass + (st.seq % TIE) / TIE)
end

-- A group whose list was empty joins the rotation at the current virtual time, unless it is still
-- a member (its list emptied after its last turn, or a cancel emptied it): then it keeps the pass it
-- reached (NX), so emptying and queueing again never moves a group ahead of those it passed.
local function activate(st, group)
  if st.cap and redis.call('ZSCORE', park_key(st), group) then return end -- parked: unpark brings it back
  redis.call('ZADD', rot_key(st), 'NX', turn_score(st, st.vtime), group)
  expire_new(st, rot_key(st))
end

-- Plain mode turns into group mode: the default group, if it has waiters, became active first.
local function start_groups(st)
  st.seq, st.vtime, st.dirty.g = 0, 0, true
  if redis.call('LLEN', st.queue) > 0 then activate(st, '') end
end

-- Groups parked at their cap whose grants ended in this call go back to their place in the rotation;
-- one still capped is parked again when it reaches the front.
local function unpark(st)
  if not st.cap then return end
  for group in pairs(st.freed) do
    local score = redis.call('ZSCORE', park_key(st), group)
    if score then
      redis.call('ZREM', park_key(st), group)
      redis.call('ZADD', rot_key(st), score, group)
    end
  end
  st.freed = {}
end

-- Group mode: the grant rule of DESIGN §7, O(log groups) per grant. Returns true when nothing at all
-- is queued (the name is back in plain mode).
local function grant_groups(st, wake_arg, quiet)
  unpark(st)
  while not full(st) do
    local front = redis.call('ZRANGE', rot_key(st), 0, 0, 'WITHSCORES')
    local group = front[1]
    if not group then
      if redis.call('ZCARD', park_key(st)) > 0 then return false end
      st.seq, st.dirty.g = nil, true
      return true
    end
    local key = group_queue(st, group)
    local e = redis.call('LPOP', key)
    if not e then
      -- A group leaves the rotation here, at the front, once nothing of it is queued: its pass is
      -- the lowest now, so joining again later at the virtual time gives it nothing it had not.
      redis.call('ZREM', rot_key(st), group)
      local pass = math.floor(tonumber(front[2]))
      if pass > st.vtime then st.vtime, st.dirty.g = pass, true end
    else
      local req, deadline = live_request(st, e, group)
      if req then
        if capped(st, group, req.weight) then
          -- passed over without holding anyone back; it keeps its score for when it is freed
          put_back(st, key, e)
          redis.call('ZREM', rot_key(st), group)
          redis.call('ZADD', park_key(st), front[2], group)
          expire_new(st, park_key(st))
        elseif not fits(st, req) then
          put_back(st, key, e)
          return false
        else
          grant(st, req, deadline, wake_arg, quiet)
          -- its turn is taken: its pass grows by the weight (it stays a member even if its list is
          -- empty now, see activate). A group back from its cap kept a pass from before the turns
          -- it missed: it takes its turn, then counts from the virtual time (one turn, not a run).
          local pass = math.max(math.floor(tonumber(front[2])), st.vtime)
          if pass > st.vtime then st.vtime, st.dirty.g = pass, true end
          redis.call('ZADD', rot_key(st), turn_score(st, pass + req.weight), group)
        end
      end
    end
  end
  return false
end

-- Grants what the rule allows now. Returns true when it saw nothing queued at all. `popped`: see grant_plain.
local function grant_ready(st, wake_arg, quiet, popped)
  if st.seq then return grant_groups(st, wake_arg, quiet) end
  return grant_plain(st, wake_arg, popped)
end

-- After a waiter left a group's list in group mode: a parked group with a new head may fit under
-- its cap now (unpark looks again). An emptied group stays a member until it reaches the front.
local function left_group(st, group)
  if st.seq then st.freed[group] = true end
end

-- The holder has certainly learned of its grant now: its lease starts here.
local function confirm(st, h)
  h.confirmed, h.granted, h.exp, h.changed = 1, st.now, st.now + h.lease, true
  st.dirty.h = true
end

-- A confirmed holder's lease moves on to now + its lease (never cut back).
local function renew(st, h)
  if st.now + h.lease > h.exp then
    h.exp, h.changed = st.now + h.lease, true
    st.dirty.h = true
  end
end

-- The deadline a holder may use: an unconfirmed grant may be cut back to granted + lease by its confirmation.
local function usable_exp(h)
  if h.confirmed == 0 then return math.min(h.exp, h.granted + h.lease) end
  return h.exp
end

-- A waiter's element found by its id alone (a scan of the queue, for the rare call that does not
-- know its `since`): its 0-based position and the element's tail after the id ("since" or "since
-- floor"), or nil.
local function scan_waiter(key, id)
  local prefix = id .. ' '
  for i, e in ipairs(redis.call('LRANGE', key, 0, -1)) do
    if string.sub(e, 1, #prefix) == prefix then return i - 1, string.sub(e, #prefix + 1) end
  end
  return nil
end

-- Removes a waiter's element; `since` (the element's tail: "since", or "since floor" for a quorum
-- waiter) '' when the client does not know it (its enqueue reply was lost).
-- A `since` that matches no element (the client's is not the element's: a re-run queued it again)
-- falls back to finding the element by the id, unless the waiter holds already.
local function remove_waiter(st, key, id, since)
  if since ~= '' then
    local n = redis.call('LREM', key, 1, id .. ' ' .. since)
    if n > 0 or st.holders[id] then return n end
  end
  local pos, at = scan_waiter(key, id)
  return pos and redis.call('LREM', key, 1, id .. ' ' .. at) or 0
end

-- The 0-based position of a waiter's element (`since`: the element's tail after the id, "since" or
-- "since floor"), and its since
-- when found by the scan, or nil. A `since` that matches no element (the client's is older than the
-- element: a re-run whose reply was lost pushed it again) falls back to the id, so a second re-run
-- finds that element instead of pushing a third.
local function find_waiter(key, id, since)
  if since ~= '' then
    local pos = redis.call('LPOS', key, id .. ' ' .. since)
    if pos then return pos end
  end
  local pos, at = scan_waiter(key, id)
  return pos, at and tonumber(string.match(at, '^%d+'))
end

-- When this master was born (see "Quorum"), Redis ms: the name's copy (field b) when it has one, else
-- the born key's value, set to now when missing. The copy is written with the state and lost with it,
-- so the born key is read only by the first quorum acquire of a name since its state was made; the
-- second result is the text to copy into the state (nil when the copy was there).
local function born_at(keys, copy, now)
  local born = num(copy)
  if born then return born, nil end
  born = tonumber(redis.call('HMGET', keys[3], 'b')[1])
  if not born then
    born = now
    redis.call('HSET', keys[3], 'b', string.format('%d', born))
  end
  return born, string.format('%d', born)
end

-- An optional number argument of a quorum call: nil when absent or '', false when malformed (not a
-- whole number from 0 to 2^53, the largest a token reaches exactly in Lua and in JavaScript).
local function quorum_number(arg, recurs)
  if arg == nil or arg == '' then return nil end
  local n = not string.find(arg, '%D') and (recurs and num(arg) or tonumber(arg))
  if not n or n > 9007199254740992 then return false end
  return n
end

-- The end of a quorum waiter's queue element, " floor" ("id since floor"); '' for a single-node
-- waiter (floor nil).
local function floor_tail(floor)
  return floor and string.format(' %d', floor) or ''
end

-- A waiter's queue element as acquire pushes it, since = now: "id since[ floor]".
local function element_text(id, since, floor)
  return string.format('%s %d%s', id, since, floor_tail(floor))
end

-- Fast path of the contended acquire (an enqueue behind a holder): one live holder, not this waiter
-- and not the restart guard, beside which the request does not fit; plain mode, the default group,
-- the name's own kind; a session whose deadline is far enough off to need no write; no restart guard
-- to start or holding. The general path then grants nothing and writes only the element (and, for a
-- queue it creates, the queue's expiry): this does the same without building the state table. A
-- test compares the two. Returns the reply, or nil for the general path.
local function enqueue_fast(keys, req, kind, limit, cap, liveness, floor, guard_ms, now, f)
  local holder, weight, mode, exp = string.match(f[3], ENTRY_FIT)
  if not holder or holder == req.id or holder == GUARD_ID then return nil end
  exp = tonumber(exp)
  if exp <= now then return nil end
  if kind == 'rw' then
    -- a write never fits beside a holder, a read only beside a writer
    if req.mode == 'x' or (req.mode == 'r' and mode ~= 'w') then return nil end
  elseif req.mode ~= 'x' or req.weight > math.min(limit, cap or limit) or num(weight) + req.weight <= limit then
    return nil -- (a weight past the limit is the general path's error)
  end
  if guard_ms and guard_ms > 0 then
    local born = num(f[8])
    if not born or born + guard_ms > now then return nil end
  end
  local deadline = session_deadline(f[5] or '', req.sid)
  if deadline - now < liveness / 2 then return nil end
  local position = redis.call('RPUSH', keys[2], element_text(req.id, now, floor))
  if position == 1 then -- a new queue key: expire_new's rule
    local x = num(f[6]) or 0
    if moved_expiry(x, now, exp) then
      write_fast(keys, { 'HSET', keys[1] }, x, now, exp)
    else
      redis.call('PEXPIREAT', keys[2], x)
    end
  end
  return { REPLY_ACQUIRE_QUEUED, now, now, position, 0, deadline }
end

--[[
  acquire: take a grant now if the request fits and nobody waits, else join the queue (or, in try
  mode, give up without joining). Idempotent per waiter id: a holder is told its grant, and a re-run
  ("again": the client re-enters after a lapse or retries a call whose reply it lost) finds the
  waiter's element before it pushes another.
  args: id, liveness ms, mode "wait" | "try" | "again", wake_arg, "kind limit" as the caller sees the
        name (an idle name takes it, a busy one with another refuses), since of the element ('' unknown),
        group (hex, '' = the default group),
        and only from a quorum client (see "Quorum"; absent, the call is the single-node one):
        floor (a token, '' for none): the grant's token is at least this; the element carries it,
        guardMs ('' or 0 for none): the restart guard; above 0, KEYS[3] is the born key,
        prev ('' or absent for none): a grant here that the previous holder handed over to this
             waiter; it is released first, as its holder's own release would release it
  Returns:
    {1, now, token, exp}              granted (exp: lease deadline, Redis ms)
    {2, now, since, position, lapsed, deadline[, guard]}
                                      queued (position 1 = next in its group; lapsed 1 when the session's deadline
                                      had passed before this call: its other waiters may have been
                                      dropped; deadline: the session's, which this call may not have moved;
                                      guard, to a quorum call while the restart guard holds the name: its end, Redis ms)
    {0, now, heldLeftMs[, guard]}     busy (try mode): the soonest holder deadline from now (guard: as for queued)
    {4, now, "kind limit"}            refused: the busy name is of another kind or limit
]]
local function acquire(keys, args)
  local id, liveness, mode, wake_arg, kind_limit, since, group = args[1], num(args[2]), args[3], args[4], args[5], args[6] or '', args[7] or ''
  local req = parse_id(id)
  local kind, limit, cap = parse_kind_limit(kind_limit)
  -- (liveness == liveness: tonumber takes "nan", which compares unequal to itself)
  if not (req and kind and liveness and liveness == liveness and liveness > 0) then return redis.error_reply('FAIRLOCK_BADARG malformed waiter id, liveness or kind') end
  if group ~= '' and not (string.match(group, GROUP) and #group % 2 == 0 and #group <= MAX_GROUP_HEX) then return redis.error_reply('FAIRLOCK_BADARG malformed group') end
  if group ~= '' and kind == 'rw' then return redis.error_reply('FAIRLOCK_BADARG a read-write lock takes no group') end
  if cap and (kind ~= 'semaphore' or cap < 1 or cap > limit) then return redis.error_reply('FAIRLOCK_BADARG perGroup ' .. cap .. ' is not from 1 to the permits') end
  local floor, guard_ms, prev -- a quorum call's (nil for a single-node one)
  if args[8] then
    floor, guard_ms = quorum_number(args[8]), quorum_number(args[9], true)
    if floor == false or guard_ms == false then return redis.error_reply('FAIRLOCK_BADARG malformed floor or guardMs') end
    if guard_ms and guard_ms > 0 and not keys[3] then return redis.error_reply('FAIRLOCK_BADARG a guardMs needs the born key') end
    if args[10] and args[10] ~= '' then
      prev = args[10]
      -- (never the restart guard: it is no holder's to hand over)
      if not string.match(prev, ID_ONLY) or prev == id or prev == GUARD_ID then return redis.error_reply('FAIRLOCK_BADARG malformed prev') end
    end
  end
  req.group = group
  local now_us, now, f = read_state(keys)
  -- A handed-over grant that is the only holder (live): released on the fast path below.
  local prev_only = false
  if prev and not blank(f[3]) then
    local holder, exp = string.match(f[3], ENTRY_EXP)
    prev_only = holder == prev and tonumber(exp) > now
  end
  -- Fast path (the common uncontended acquire, and the quorum's acquire after a handover): nobody
  -- holds but prev, nobody queues, plain mode, the default group, a request that fits an empty name
  -- that is not full (a limit of 0, which no client sends, is), no restart guard to start: granted
  -- from the fields as read, and written back as flush would (the same fields, the same expiry rule).
  -- Anything else takes the general path.
  if mode ~= 'again' and group == '' and (blank(f[3]) or prev_only) and blank(f[7]) and (f[1] == kind_limit or not f[1])
    and (req.mode ~= 'x' or req.weight <= math.min(limit, cap or limit)) and (kind == 'rw' or limit > 0) then
    local born_text, born_new = f[8], false
    local guarded = false
    if guard_ms and guard_ms > 0 then
      local born, read = born_at(keys, born_text, now)
      if read then born_text, born_new = read, true end
      guarded = born + guard_ms > now
    end
    if not guarded and redis.call('LLEN', keys[2]) == 0 then
      local token, exp = token_after(tonumber(f[2]) or 0, now_us, floor), now + req.lease
      -- holder_text's entry for a confirmed grant of the default group, written here without filling
      -- the request's table (that costs ~3% of this call; the differential tests hold the two together)
      local token_text = string.format('%d', token)
      local args = { 'HSET', keys[1], 'h', string.format('%s %s %d %d %d 1', id, token_text, exp, req.lease, now), 't', token_text }
      if not f[1] then args[#args + 1] = 'k'; args[#args + 1] = kind_limit end
      if prev_only then args[#args + 1] = 'r'; args[#args + 1] = released_with(f[4] or '', prev) end
      if born_new then args[#args + 1] = 'b'; args[#args + 1] = born_text end
      write_fast(keys, args, num(f[6]) or 0, now, exp)
      return { REPLY_ACQUIRE_GRANTED, now, token, exp }
    end
  end
  if mode == 'wait' and group == '' and not blank(f[3]) and blank(f[7]) and f[1] == kind_limit and not prev then
    local reply = enqueue_fast(keys, req, kind, limit, cap, liveness, floor, guard_ms, now, f)
    if reply then return reply end
  end
  local st = load(keys, now_us, now, f)
  -- The handed-over grant goes first, as its holder's release would have, just before this call.
  local handed = prev and st.holders[prev]
  if handed then give_back(st, handed) end

  local h = st.holders[id]
  if h then
    if h.confirmed == 0 then confirm(st, h) end -- a hand-off whose wake-up this waiter did not use
    flush(st)
    return { REPLY_ACQUIRE_GRANTED, now, h.token, h.exp }
  end

  if st.kind_limit ~= kind_limit then
    if st.kind_limit and (st.count > 0 or st.seq or redis.call('LLEN', st.queue) > 0) then
      if handed then grant_ready(st, wake_arg) end
      flush(st)
      return { REPLY_ACQUIRE_REFUSED, now, st.kind_limit }
    end
    st.kind_limit, st.kind, st.limit, st.cap, st.dirty.k = kind_limit, kind, limit, cap, true
  end
  if req.mode == 'x' and req.weight > math.min(st.limit, st.cap or st.limit) then
    return redis.error_reply('FAIRLOCK_BADARG weight ' .. req.weight .. ' is more than the limit ' .. st.limit .. ' or the perGroup cap')
  end
  if guard_ms and guard_ms > 0 then
    -- The restart guard (see "Quorum"): the born key is set when missing (this master lost its data,
    -- or never served a quorum call); until born + guardMs the guard holds the name.
    local born, read = born_at(keys, st.born_text, now)
    if read then st.born_text, st.dirty.b = read, true end
    local ends, g = born + guard_ms, st.holders[GUARD_ID]
    if ends > now and not g then
      g = parse_id(GUARD_ID)
      g.group, g.token, g.exp, g.granted, g.confirmed, g.changed = '', 0, ends, now, 1, true
      add_holder(st, g)
    elseif g and ends > g.exp then
      g.exp, g.changed, st.dirty.h = ends, true, true
    end
  end
  -- a quorum call is told the guard's end (Redis ms) while the guard holds the name
  local guard_end = args[8] ~= nil and st.holders[GUARD_ID] and st.holders[GUARD_ID].exp

  -- Anyone queued goes first: grant_ready serves them (and drops the dead) before this request is
  -- looked at. A name this request does not fit is not peeked at (unless a holder just expired).
  local empty = false
  if st.expired or handed or fits(st, req) then empty = grant_ready(st, wake_arg) end
  h = st.holders[id]
  if h then -- a re-run whose element was at the head
    confirm(st, h)
    flush(st)
    return { REPLY_ACQUIRE_GRANTED, now, h.token, h.exp }
  end
  if empty and fits(st, req) then
    h = req
    h.token, h.exp, h.granted, h.confirmed, h.changed = next_token(st, floor), now + req.lease, now, 1, true
    add_holder(st, h)
    flush(st)
    return { REPLY_ACQUIRE_GRANTED, now, h.token, h.exp }
  end

  if mode == 'try' then
    flush(st)
    local soonest = 0
    for _, o in pairs(st.holders) do
      local left = usable_exp(o) - now
      if soonest == 0 or left < soonest then soonest = left end
    end
    if guard_end then return { REPLY_ACQUIRE_BUSY, now, soonest, guard_end } end
    return { REPLY_ACQUIRE_BUSY, now, soonest }
  end

  local deadline = session_deadline(st.sessions, req.sid)
  local lapsed = deadline <= now and 1 or 0
  -- The session's deadline is written only when less than half the liveness is left.
  if deadline - now < liveness / 2 then
    deadline = now + liveness
    set_session(st, req.sid, deadline)
  end

  local key = group_queue(st, group)
  -- a quorum waiter's element ends with its floor: "id since floor"
  if mode == 'again' then
    local pos, at = find_waiter(key, id, since ~= '' and (since .. floor_tail(floor)) or '')
    if pos then
      flush(st)
      local reply = { REPLY_ACQUIRE_QUEUED, now, at or tonumber(since), pos + 1, lapsed, deadline }
      if guard_end then reply[7] = guard_end end
      return reply
    end
  end
  -- A named group that has to wait turns the name to group mode; in group mode the request joins its
  -- group's list and the grant rule runs, which may grant it at once (its group's turn, a capped
  -- group passed over): it learns that from this reply, not from a wake-up.
  if group ~= '' and not st.seq then start_groups(st) end
  local position = redis.call('RPUSH', key, element_text(id, now, floor))
  if position == 1 then
    expire_new(st, key)
    if st.seq then activate(st, group) end
  end
  if st.seq then
    grant_ready(st, wake_arg, id)
    h = st.holders[id]
    if h then
      confirm(st, h)
      flush(st)
      return { REPLY_ACQUIRE_GRANTED, now, h.token, h.exp }
    end
  end
  flush(st)
  if guard_end then return { REPLY_ACQUIRE_QUEUED, now, now, position, lapsed, deadline, guard_end } end
  return { REPLY_ACQUIRE_QUEUED, now, now, position, lapsed, deadline }
end

-- Fast path of the contended release (the hand-off): the only holder releases in plain mode and the
-- head of the queue (`head`, popped by release) is live and fills the name alone (a lock's waiter, a
-- write, a request for every permit): the general path grants it a hand-off grant and stops there.
-- This writes the same (the holder entry, the token, the released ids, the expiry by keep_keys' rule)
-- and wakes the waiter the same way, without building the state table; a test compares the two.
-- Returns true when it handed the name on, nil for the general path (nothing written: it takes the
-- popped head from there).
local function hand_off_fast(keys, id, head, wake_arg, handover, now_us, now, f)
  local next_id, sid, lease_text, weight, mode, floor = string.match(head, ELEMENT_HEAD)
  if not next_id or next_id == id or released_before(f[4] or '', next_id) then return nil end
  local kind, limit, cap = parse_kind_limit(f[1])
  if not ((kind == 'rw' and mode == 'w')
    or (kind and kind ~= 'rw' and mode == 'x' and num(weight) == limit and (not cap or limit <= cap))) then
    return nil
  end
  -- The texts of the session's deadline and of the lease go into the entry as they are (each number
  -- formatted costs a sprintf): both are written by %d, so they have no leading zero, unless an id
  -- was made by hand, which takes the general path.
  local deadline_text = session_deadline_text(f[5] or '', sid)
  local deadline = num(deadline_text) or 0
  if deadline <= now or string.byte(lease_text, 1) == 48 then return nil end
  local lease = num(lease_text)
  local token = token_after(tonumber(f[2]) or 0, now_us, floor ~= '' and tonumber(floor) or nil)
  local token_text = string.format('%d', token)
  local wake_exp = deadline <= now + lease and deadline_text or string.format('%d', now + lease)
  wake(wake_arg, sid, next_id .. ' ' .. token_text .. ' ' .. wake_exp .. (handover and (' ' .. handover) or ''))
  -- holder_text's entry of an unconfirmed grant of the default group (see grant)
  local entry = next_id .. ' ' .. token_text .. ' ' .. deadline_text .. ' ' .. lease_text .. ' ' .. string.format('%d', now) .. ' 0'
  write_fast(keys, { 'HSET', keys[1], 'h', entry, 't', token_text, 'r', released_with(f[4] or '', id) }, num(f[6]) or 0, now, deadline)
  return true
end

-- release's "released" reply; to a release that passed a handover, whether a wake-up carried it.
local function released_reply(now, handover, handed)
  if handover then return { REPLY_RELEASE_RELEASED, now, handed and 1 or 0 } end
  return { REPLY_RELEASE_RELEASED, now }
end

--[[
  release: a holder gives its grant up; the waiters that fit now are granted at once and each is woken
  by one publish on its session's channel. Safe to repeat: a second run answers "already".
  args: holder's id, wake_arg,
        and only from a quorum client: handover ('' for none), see "Quorum": appended to the wake-up
        of the waiter this release grants
  Returns: {1, now} released | {2, now} already released by this id | {0, now} not a holder
           (released, to a handover: {1, now, 1} when a wake-up carried it, {1, now, 0} when none did)
]]
local function release(keys, args)
  local id, wake_arg, handover = args[1], args[2], args[3]
  if handover == '' then handover = nil end
  if handover and not (#handover <= MAX_HANDOVER and string.match(handover, HANDOVER)) then
    return redis.error_reply('FAIRLOCK_BADARG malformed handover')
  end
  local now_us, now, f = read_state(keys)
  -- Fast paths (the common releases): this id is the only holder, its deadline has not passed, plain
  -- mode, and nobody queued: the entry goes, the id joins the released ones, as the general path
  -- writes them; or a waiter queued (see hand_off_fast).
  local entry_id, exp, head
  if f[3] and blank(f[7]) then
    entry_id, exp = string.match(f[3], ENTRY_EXP) -- one entry only: the pattern is anchored at both ends
  end
  if entry_id and entry_id == id and tonumber(exp) > now then
    head = redis.call('LPOP', keys[2])
    if not head then
      write_fast(keys, { 'HSET', keys[1], 'h', '', 'r', released_with(f[4] or '', id) }, num(f[6]) or 0, now, 0)
      return released_reply(now, handover, false)
    end
    if hand_off_fast(keys, id, head, wake_arg, handover, now_us, now, f) then return released_reply(now, handover, true) end
  end
  local st = load(keys, now_us, now, f)
  local h = st.holders[id]
  if h then
    give_back(st, h)
    st.handover = handover -- only a holder's release hands anything over
  end
  -- (a head popped above implies h: the general path grants it first, or puts it back)
  if h or st.expired then grant_ready(st, wake_arg, nil, head) end
  flush(st)
  if h then return released_reply(st.now, handover, st.handed) end
  if released_before(st.released, id) then return { REPLY_RELEASE_ALREADY, st.now } end
  return { REPLY_RELEASE_NOT_HOLDER, st.now }
end

--[[
  cancel: a waiter gives up (timeout, abort, close). If the grant raced ahead of the cancel, the waiter
  is a holder now and is released on the spot. Either way the waiters that fit now are granted (the
  one that left may have been holding them back). Safe to repeat.
  args: waiter id, wake_arg, since of its element ('' unknown), group (hex, '' = the default group),
        floor of its element (a quorum waiter's; '' or absent for none)
  Returns: {1, now} left the queue | {3, now} was granted, released now |
           {2, now} already released | {0, now} not found (never queued, or dropped as dead)
]]
local function cancel(keys, args)
  local id, wake_arg, since, group, floor = args[1], args[2], args[3] or '', args[4] or '', args[5] or ''
  if not (string.match(group, GROUP) and #group <= MAX_GROUP_HEX) then return redis.error_reply('FAIRLOCK_BADARG malformed group') end
  if not string.match(floor, '^%d*$') then return redis.error_reply('FAIRLOCK_BADARG malformed floor') end
  if since ~= '' and floor ~= '' then since = since .. ' ' .. floor end
  local st = load(keys, read_state(keys))
  local key = group_queue(st, group)
  local left = remove_waiter(st, key, id, since) > 0
  if left then left_group(st, group) end
  local h = (not left) and st.holders[id]
  if h then give_back(st, h) end
  grant_ready(st, wake_arg)
  flush(st)
  if left then return { REPLY_CANCEL_LEFT, st.now } end
  if h then return { REPLY_CANCEL_RELEASED, st.now } end
  if released_before(st.released, id) then return { REPLY_CANCEL_ALREADY, st.now } end
  return { REPLY_CANCEL_NOT_FOUND, st.now }
end

--[[
  extend: a holder sets its lease to end ms from now; later renewals use ms as the lease.
  args: holder's id, ms, wake_arg
  Returns: {1, now, exp} extended | {0, now} not a holder
]]
local function extend(keys, args)
  local id, ms, wake_arg = args[1], tonumber(args[2]), args[3]
  local st = load(keys, read_state(keys))
  local h = st.holders[id]
  if h then
    h.lease, h.changed = ms, true
    confirm(st, h)
  end
  if st.expired then grant_ready(st, wake_arg) end
  flush(st)
  if not h then return { REPLY_EXTEND_NOT_HOLDER, st.now } end
  return { REPLY_EXTEND_EXTENDED, st.now, h.exp }
end

--[[
  commit: a quorum holder's commit (DESIGN §8, rule 4): if `id` holds the name, the name's last token
  becomes max(last, T) (so a later grant here takes a token above T) and the holder's lease is renewed
  to now + its lease (never cut back; an unconfirmed hand-off is confirmed). The holder's own token is
  left as it is. Safe to repeat.
  args: holder's id, T (a token), wake_arg
  Returns: {1, now, exp} committed (exp: the lease's deadline now) | {0, now} not a holder
]]
local function commit(keys, args)
  local id, T, wake_arg = args[1], quorum_number(args[2]), args[3]
  if not T then return redis.error_reply('FAIRLOCK_BADARG malformed token') end
  local st = load(keys, read_state(keys))
  local h = st.holders[id]
  if h then
    if T > last_token(st) then st.token, st.dirty.t = T, true end
    if h.confirmed == 0 then
      confirm(st, h)
    else
      renew(st, h)
    end
  end
  if st.expired then grant_ready(st, wake_arg) end
  flush(st)
  if not h then return { REPLY_COMMIT_NOT_HOLDER, st.now } end
  return { REPLY_COMMIT_COMMITTED, st.now, h.exp }
end

--[[
  heartbeat: one beat of one session on one name, O(1) in the number of waiters. Sets the session's
  deadline, grants on if a holder's lease ran out, confirms this session's grants (see "Lease start"),
  renews the auto-renewed leases it names, and reports this session's holders with the deadline each
  may use, so the client can recover a lost wake-up or learn that it lost a lease. Only the leases the
  client names are renewed: a grant it no longer tracks runs out like a dead holder's.
  args: session id, liveness ms, wake_arg,
        ask ("1": report how many connections this node has on the session's shard channel of the
             name: 0 means the client's subscription did not follow the slot here),
        newest ("id since group[ floor]" of the session's newest waiter, or ''): when it is neither queued nor a
             holder, Redis lost it (a failover to a replica without the enqueue, a restart without the
             data) and the beat reports a lapse, so every waiter runs acquire again. The newest suffices:
             a replica holds a prefix of the master's writes,
        count of held ids, the held ids, then the given-up ids ("id since group[ floor]", since '-'
             when unknown, 'g' for a grant that was never queued as such, a quorum holder's handed-over
             grant; floor: a quorum waiter's): leases or waits whose release or cancel did not get
             through; they are released or leave the queue
  Returns: {lapsed 0|1, now, {id1, token1, exp1, ...} of this session's holders, the queue key when it
  is of the wrong type (the client fails its waits; leases are still renewed) or '', subscribers or -1}
]]
local function heartbeat(keys, args)
  local sid, liveness, wake_arg, ask, newest, held_count = args[1], tonumber(args[2]), args[3], args[4], args[5], tonumber(args[6])
  -- A session id is letters and digits (it is matched inside the field s); a liveness is a number.
  if not (string.match(sid, '^%w+$') and liveness and liveness == liveness and liveness > 0 and held_count) then
    return redis.error_reply('FAIRLOCK_BADARG malformed session id, liveness or held count')
  end
  local st = load(keys, read_state(keys))
  local now = st.now
  local lapsed = session_deadline(st.sessions, sid) <= now
  set_session(st, sid, now + liveness)

  local named, dropped = {}, {}
  for i = 7, 6 + held_count do named[args[i]] = true end
  for i = 7 + held_count, #args do
    local id, since, group, floor = string.match(args[i], '^(%S+) (%S+) (%x*) ?(%d*)$')
    if id then dropped[#dropped + 1] = { id = id, since = (since == '-' and '') or (floor == '' and since) or (since .. ' ' .. floor), group = group, grant = since == 'g' } end
  end
  local subscribers = -1
  if ask == '1' then
    local r = redis.pcall('PUBSUB', 'SHARDNUMSUB', wake_channel(wake_arg, sid))
    if type(r) == 'table' and r[2] then subscribers = r[2] end
  end

  local function serve()
    for _, h in ipairs(st.order) do
      if not h.gone and h.sid == sid then
        if h.confirmed == 0 and not named[h.id] then
          confirm(st, h) -- a grant whose wake-up this client has not taken: its lease starts now, once
        elseif h.confirmed == 0 then
          h.confirmed, h.changed = 1, true
          h.exp = h.renew and (now + h.lease) or (h.granted + h.lease)
          st.dirty.h = true
          if h.exp <= now then remove_holder(st, h) end
        elseif named[h.id] and h.renew then
          renew(st, h)
        end
      end
    end
  end

  for _, d in ipairs(dropped) do
    local h = st.holders[d.id]
    -- only this session's: a beat never frees another session's grant
    if h and h.sid == sid then give_back(st, h) end
  end
  -- LLEN, not a bare expiry: a queue key turned into another type is reported at once, so this
  -- session's waits fail at this beat instead of hanging.
  local queued = redis.pcall('LLEN', st.queue)
  local bad_queue = type(queued) == 'table' and queued.err and string.sub(queued.err, 1, 9) == 'WRONGTYPE'
  if type(queued) == 'table' and not bad_queue then return queued end -- another error reply, as it is
  if bad_queue then
    serve()
  else
    for _, d in ipairs(dropped) do
      if not st.holders[d.id] and not d.grant then
        local key = group_queue(st, d.group)
        if remove_waiter(st, key, d.id, d.since) > 0 then left_group(st, d.group) end
      end
    end
    if newest ~= '' then
      local id, since, group, floor = string.match(newest, '^(%S+) (%d+) (%x*) ?(%d*)$')
      if id and floor ~= '' then since = since .. ' ' .. floor end
      if id and not st.holders[id] and not find_waiter(group_queue(st, group), id, since) then lapsed = true end
    end
    serve()
    local n = st.count
    grant_ready(st, wake_arg)
    if st.count ~= n then serve() end -- grants made just now to this session are learned from this reply
  end
  flush(st)

  local reply = {}
  for _, h in ipairs(st.order) do
    if not h.gone and h.sid == sid then
      reply[#reply + 1] = h.id
      reply[#reply + 1] = h.token
      reply[#reply + 1] = usable_exp(h)
    end
  end
  return { lapsed and 1 or 0, now, reply, bad_queue and st.queue or '', subscribers }
end

--[[
  inspect: the holders and the live part of the queue, in order; read only. Waiters whose session is
  past its deadline are left out (they are dropped when they reach the head).
  args: the most queue entries to return
  Returns: {0, now, "kind limit" or "", {id1, token1, exp1, granted1, group1, ...},
            {id1, since1, group1, ...}, r, {group1, waiting1, parked1, ...}}
  (exp: the deadline the holder may use, see usable_exp; r: the last ids that gave a grant up; the
  queue group by group in rotation order, each group's waiters in its order; the groups with
  waiters in rotation order, parked ones at their place, with their list's length, dead included)
]]
local function inspect(keys, args)
  local most = tonumber(args[1])
  local st = load(keys, read_state(keys))
  local holders = {}
  for _, h in ipairs(st.order) do
    holders[#holders + 1] = h.id
    holders[#holders + 1] = h.token
    holders[#holders + 1] = usable_exp(h)
    holders[#holders + 1] = h.granted
    holders[#holders + 1] = h.group
  end
  local rotation = { { group = '', parked = 0 } }
  if st.seq then
    rotation = {}
    for parked, z in ipairs({ rot_key(st), park_key(st) }) do
      local r = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
      for i = 1, #r, 2 do rotation[#rotation + 1] = { group = r[i], score = tonumber(r[i + 1]), parked = parked - 1 } end
    end
    table.sort(rotation, function(a, b) return a.score < b.score end)
  end
  local live, alive, groups = {}, {}, {}
  local batch = 1000
  for _, g in ipairs(rotation) do
    local key = group_queue(st, g.group)
    local from = 0
    while #live < most * 3 do
      local entries = redis.call('LRANGE', key, from, from + batch - 1)
      if #entries == 0 then break end
      for _, e in ipairs(entries) do
        local id, sid, _, _, _, _, since = string.match(e, ELEMENT)
        if sid and alive[sid] == nil then alive[sid] = session_deadline(st.sessions, sid) > st.now end
        if sid and alive[sid] and #live < most * 3 then
          live[#live + 1] = id
          live[#live + 1] = since
          live[#live + 1] = g.group
        end
      end
      from = from + batch
    end
    local waiting = st.seq and redis.call('LLEN', key) or 0
    if waiting > 0 then -- a member with nothing queued (it leaves at the front) is not reported
      groups[#groups + 1] = g.group
      groups[#groups + 1] = waiting
      groups[#groups + 1] = g.parked
    end
  end
  return { 0, st.now, st.kind_limit or '', holders, live, st.released, groups }
end

--[[
  types: run by the client after a call failed with WRONGTYPE, to name the key that is not what
  fairlock expects (the calls use plain redis.call, so the error itself does not say which).
  Returns: {key, type} of the first key of the wrong type, or {} if every key is fine now.
]]
local function types(keys, _)
  local expected = { 'hash', 'list' }
  for i = 1, #keys do
    local t = redis.call('TYPE', keys[i])
    t = type(t) == 'table' and t.ok or t
    if t ~= 'none' and t ~= expected[i] then return { keys[i], t } end
  end
  return {}
end

local ENTRY = { acquire = acquire, release = release, cancel = cancel, extend = extend, commit = commit, heartbeat = heartbeat, inspect = inspect, types = types }
