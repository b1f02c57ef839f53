/**
 * Where the Lua time of a grant goes (not part of `npm run bench`): usec per EVALSHA from INFO
 * commandstats (it includes the commands a script runs), for stripped-down scripts, for the real
 * scripts cut short after each step, and for the real scripts. `npx tsx scripts/bench/profile-lua.ts`
 *   LUA_DIR=path   measures a patched copy of src/protocol/lua
 *   VARIANT=name   edits common.lua before measuring (see VARIANTS below)
 *   CALLS=100 BATCHES=15: each figure is the cheapest of BATCHES batches of CALLS calls (preemption
 *   on a busy machine only ever adds time, so the minimum is the least disturbed measure).
 * "steps": the script with `do return end` inserted after each step, on the same state as the real
 * call (an idle name for acquire; a name with one holder and nobody queued for release): the
 * differences between rows are what each step costs. scripts/bench/cost.ts compares whole
 * protocols (old, new, a patched copy).
 */
import { createClient } from 'redis';
import { newProtocol, type Protocol } from './lua-bodies.js';
import { startBenchRedis } from './redis-server.js';

const CALLS = Number(process.env.CALLS ?? 100);
const BATCHES = Number(process.env.BATCHES ?? 15);

/** common.lua edits that price one thing each; each must apply (newProtocol checks). */
const VARIANTS: Record<string, (common: string) => string> = {
  // grant_ready() looks for the key before it peeks at the queue's head (EXISTS, not ZRANGE, on an empty queue)
  exists: (c) =>
    c.replace(
      'local function grant_ready(s, prefix)\n  while not full(s) do',
      "local function grant_ready(s, prefix)\n  if not full(s) and call('EXISTS', K_QUEUE) == 0 then return true end\n  while not full(s) do",
    ),
  // load() reads of each holder only what every script needs (deadline, weight, mode); the rest of
  // the entry and the id is parsed on first use (a metatable), so a name with many holders costs less
  lazy: (c) =>
    c.replace(
      `      local h = parse_id(f)
      local token, exp, lease, g, c = string.match(v, '^(%d+) (%d+) (%d+) (%d+) ([01])$')
      if not (h and token) then bad_state('malformed entry ' .. f) end
      h.token, h.exp, h.lease, h.g, h.c = tonumber(token), tonumber(exp), tonumber(lease), tonumber(g), c
      if h.exp > now then add_holder(s, h) else s.del[#s.del + 1] = f end`,
      // a function: the Lua text holds "$'", which a replacement string would expand
      () => `      local exp = string.match(v, '^%d+ (%d+) %d+ %d+ [01]$')
      local weight, mode = string.match(f, '^[^:]+:[^:]+:%d+:[01]:(%d+):([xrw])$')
      if not (exp and weight) then bad_state('malformed entry ' .. f) end
      local h = setmetatable({ id = f, v = v, exp = tonumber(exp), weight = tonumber(weight), mode = mode }, LAZY)
      if h.exp > now then add_holder(s, h) else s.del[#s.del + 1] = f end`,
    ).replace(
      '-- The state of the name, holders whose deadline passed left out (and deleted at flush).',
      () => `-- The fields of a holder entry load() left unparsed, filled in on first read (never over a field set since).
local LAZY = { __index = function(h, key)
  local token, _, lease, g, c = string.match(rawget(h, 'v'), '^(%d+) (%d+) (%d+) (%d+) ([01])$')
  local sid, renew = string.match(rawget(h, 'id'), '^([^:]+):[^:]+:%d+:([01]):')
  local fields = { token = tonumber(token), lease = tonumber(lease), g = tonumber(g), c = c, sid = sid, renew = renew }
  for k, v in pairs(fields) do
    if rawget(h, k) == nil then rawset(h, k, v) end
  end
  return rawget(h, key)
end }

-- The state of the name, holders whose deadline passed left out (and deleted at flush).`,
    ),
  // prices the state's PEXPIRE on every new ticket or renewal (UNSAFE, measurement only: the state
  // would keep its TTL from its first write): what keeping the TTL's deadline in the hash and
  // refreshing it only when it runs short could save
  nopexpire: (c) => c.replace("    call('PEXPIRE', K_STATE, ttl)\n", '    local _ = ttl\n'),
  // remember_release without gmatch and a table: prepend the id, cut after the 8th with plain finds
  remember: (c) =>
    c.replace(
      /local function remember_release\(s, id\)\n[\s\S]*?\nend\n/,
      `local function remember_release(s, id)
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
`,
    ),
};

const redis = await startBenchRedis();
try {
  const client = createClient({ url: redis.url });
  client.on('error', () => undefined); // a script's error is thrown by its call; a closing server must not mask it
  await client.connect();
  const send = (args: string[]) => client.sendCommand(args) as Promise<unknown>;
  const variant = process.env.VARIANT;
  if (variant && !VARIANTS[variant]) throw new Error(`unknown VARIANT ${variant}; known: ${Object.keys(VARIANTS).join(', ')}`);
  const p: Protocol = newProtocol(process.env.LUA_DIR, variant ? VARIANTS[variant] : undefined);
  const script = (name: 'acquire' | 'release') => {
    const body = p.body(name);
    const at = body.lastIndexOf(`--[[\n  ${name}.lua`);
    if (at < 0) throw new Error(`cannot find the start of ${name}.lua in its body`);
    return { prelude: body.slice(0, at), own: body.slice(at) };
  };
  const prefix = 'p';
  const load = async (body: string) => String(await send(['SCRIPT', 'LOAD', body]));
  const usecOf = (text: string, cmd = 'evalsha') => {
    const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+),usec=(\\d+)`).exec(text);
    return m ? Number(m[2]) / Number(m[1]) : NaN;
  };
  const innerOf = (text: string, cmd = 'evalsha') => {
    let calls = 0;
    let evals = 0;
    for (const m of text.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
      if (m[1] === cmd) evals = Number(m[2]);
      else if (!/^(info|config\|.*)$/.test(m[1]!)) calls += Number(m[2]);
    }
    return evals ? calls / evals : NaN;
  };
  /** µs per script call and commands run per call: the cheapest batch. `between` runs unmeasured after each batch. */
  const measure = async (call: (i: number) => Promise<unknown>, between?: () => Promise<unknown>, cmd = 'evalsha') => {
    for (let i = 0; i < 20; i++) await call(i);
    await between?.();
    let best = Infinity;
    let inner = NaN;
    for (let b = 0; b < BATCHES; b++) {
      await send(['CONFIG', 'RESETSTAT']);
      for (let i = 0; i < CALLS; i++) await call(i);
      const text = String(await send(['INFO', 'commandstats']));
      const us = usecOf(text, cmd);
      if (us < best) {
        best = us;
        inner = innerOf(text, cmd);
      }
      await between?.();
    }
    return { us: +best.toFixed(2), cmds: +inner.toFixed(2) };
  };
  const out = { floor: {} as Record<string, unknown>, steps: {} as Record<string, unknown>, scripts: {} as Record<string, unknown> };

  // Floors: what any script costs here.
  const k = p.keys(prefix, 'floor');
  const bare = async (body: string) => {
    const sha = await load(body);
    return measure(() => send(['EVALSHA', sha, ...k]));
  };
  const { prelude } = script('release');
  out.floor['EVALSHA: return 1'] = await bare('return 1');
  out.floor['EVALSHA: TIME + return'] = await bare(`local t = redis.call('TIME') return {1, tonumber(t[1])}`);
  out.floor['prelude (reply codes + common.lua) + clock() + return'] = await bare(`${prelude}\nclock() return {1, now}`);
  out.floor['prelude + clock() + 7 EXISTS'] = await bare(`${prelude}\nclock() for i = 1, 7 do call('EXISTS', K_STATE) end return {1, now}`);
  // The prelude's closures are built on every EVALSHA; a Redis Function library builds them once,
  // at FUNCTION LOAD (Redis 7+): the same prelude, its keys and `call` set per call instead.
  try {
    const lib = prelude
      .replace('local K_STATE, K_QUEUE, K_SESSIONS = KEYS[1], KEYS[2], KEYS[3]', 'local K_STATE, K_QUEUE, K_SESSIONS')
      .replace('local call = redis.call', 'local call');
    if (lib === prelude) throw new Error('the prelude changed: update the FCALL row');
    await send(['FUNCTION', 'LOAD', 'REPLACE', `#!lua name=fairlock_profile\n${lib}\nredis.register_function('fl_clock', function(keys) K_STATE, K_QUEUE, K_SESSIONS, call = keys[1], keys[2], keys[3], redis.call clock() return {1, now} end)`]);
    out.floor['FCALL: the prelude built once at FUNCTION LOAD, clock() + return'] = await measure(() => send(['FCALL', 'fl_clock', ...k]), undefined, 'fcall');
    await send(['FUNCTION', 'DELETE', 'fairlock_profile']);
  } catch (err) {
    out.floor['FCALL: the prelude built once at FUNCTION LOAD, clock() + return'] = `skipped: ${String((err as Error).message)}`;
  }

  // load() against the number of holders: every script parses every holder entry of the name.
  {
    const acq = await load(p.body('acquire'));
    const loadOnly = await load(`${prelude}\nclock() local s = load() return {1, now, s.n}`);
    for (const n of [0, 1, 4, 16]) {
      const keys = p.keys(prefix, `sem-${n}`);
      for (let i = 0; i < n; i++) {
        const r = (await send(['EVALSHA', acq, ...keys, p.id(`s${i % 4}`, i + 1, 60_000), '60000', 'wait', prefix, 'semaphore 16'])) as unknown[];
        if (Number(r[0]) !== 1) throw new Error(`semaphore setup: ${JSON.stringify(r)}`);
      }
      out.floor[`prelude + clock() + load() of a semaphore with ${n} holders`] = await measure(() => send(['EVALSHA', loadOnly, ...keys]));
    }
  }

  // Steps: the real scripts cut short after each step.
  const cut = (name: 'acquire' | 'release', after: string) => {
    const { prelude: pre, own } = script(name);
    if (after === '') return `${pre}\ndo return {0, 0} end\n${own}`;
    const at = own.indexOf(`\n${after}\n`);
    if (at < 0) throw new Error(`${name}.lua has no line "${after}" (update the steps in profile-lua.ts)`);
    const end = at + after.length + 2;
    return `${pre}\n${own.slice(0, end)}do return {0, now} end\n${own.slice(end)}`;
  };
  {
    const keys = p.keys(prefix, 'idle');
    const acq = await load(p.body('acquire'));
    const rel = await load(p.body('release'));
    const id = p.id('s0', 1);
    const args = [id, ...p.acquireArgs(5000, 'wait', prefix)];
    // an idle name as a release leaves it (t, k, r)
    for (let i = 0; i < 10; i++) {
      const x = p.id('s0', 100 + i);
      await send(['EVALSHA', acq, ...keys, x, ...p.acquireArgs(5000, 'wait', prefix)]);
      await send(['EVALSHA', rel, ...keys, x, prefix]);
    }
    const acquireSteps: [string, string][] = [
      ['prelude', ''],
      ['+ clock()', 'clock()'],
      ['+ parse the request', 'limit = tonumber(limit)'],
      ['+ load() (HGETALL of t, k, r)', 'local s = load()'],
      ['+ grant_ready() (peeks the empty queue)', 'local empty = grant_ready(s, prefix)'],
      ['+ the grant, up to flush() (ticket, holder entry)', '  put_holder(s, g)'],
    ];
    for (const [what, after] of acquireSteps) {
      const sha = await load(cut('acquire', after));
      out.steps[`acquire, idle name: ${what}`] = await measure(() => send(['EVALSHA', sha, ...keys, ...args]));
    }
    // the whole acquire: granted, then released unmeasured, on a fresh id each time
    let seq = 1000;
    const ids: string[] = [];
    out.steps['acquire, idle name: whole script (grants)'] = await measure(
      async () => {
        const x = p.id('s0', ++seq);
        ids.push(x);
        await send(['EVALSHA', acq, ...p.keys(prefix, `idle-${ids.length}`), x, ...p.acquireArgs(5000, 'wait', prefix)]);
      },
      async () => {
        for (let i = 0; i < ids.length; i++) await send(['EVALSHA', rel, ...p.keys(prefix, `idle-${i + 1}`), ids[i]!, prefix]);
        ids.length = 0;
      },
    );

    // release: one holder, nobody queued
    await send(['EVALSHA', acq, ...keys, ...args]);
    const releaseSteps: [string, string][] = [
      ['prelude', ''],
      ['+ clock()', 'clock()'],
      ['+ load() (HGETALL: t, k, r and the holder)', 'local s = load()'],
      ['+ remove_holder() + remember_release()', 'if held then remember_release(s, id) end'],
      ['+ grant_ready() (peeks the empty queue)', 'grant_ready(s, prefix)'],
    ];
    for (const [what, after] of releaseSteps) {
      const sha = await load(cut('release', after));
      out.steps[`release, one holder: ${what}`] = await measure(() => send(['EVALSHA', sha, ...keys, id, prefix]));
    }
    const held: { name: string; id: string }[] = [];
    out.steps['release, one holder: whole script'] = await measure(
      async (i) => {
        const h = held[i];
        if (h) await send(['EVALSHA', rel, ...p.keys(prefix, h.name), h.id, prefix]);
      },
      async () => {
        held.length = 0;
        for (let i = 0; i < CALLS; i++) {
          const x = p.id('s0', ++seq);
          held.push({ name: `held-${i}`, id: x });
          await send(['EVALSHA', acq, ...p.keys(prefix, `held-${i}`), x, ...p.acquireArgs(5000, 'wait', prefix)]);
        }
      },
    );
  }

  // Whole grants.
  {
    const acq = await load(p.body('acquire'));
    const rel = await load(p.body('release'));
    const keys = p.keys(prefix, 'raw');
    let seq = 0;
    out.scripts['uncontended: acquire.lua (grants) + release.lua, per script call'] = await measure(async () => {
      const id = p.id('s0', ++seq);
      await send(['EVALSHA', acq, ...keys, id, ...p.acquireArgs(5000, 'wait', prefix)]);
      await send(['EVALSHA', rel, ...keys, id, prefix]);
    });
    // The contended path: 15 waiters queued; each round hands the lock on and enqueues one more.
    const kk = p.keys(prefix, 'hot');
    const queue: string[] = [];
    let next = 0;
    const enqueue = async () => {
      const id = p.id(`s${next % 4}`, ++next);
      await send(['EVALSHA', acq, ...kk, id, ...p.acquireArgs(60_000, 'wait', prefix)]);
      queue.push(id);
    };
    for (let i = 0; i <= 15; i++) await enqueue();
    out.scripts['hand-off: release.lua (grants the head) + acquire.lua (enqueues), 15 queued, per script call'] = await measure(async () => {
      await send(['EVALSHA', rel, ...kk, queue.shift()!, prefix]);
      await enqueue();
    });
  }
  console.log(JSON.stringify({ variant: variant ?? null, source: p.source, calls: CALLS, batches: BATCHES, ...out }, null, 1));
  await client.quit();
} finally {
  await redis.stop();
}
