/**
 * What one grant costs Redis, old protocol against new, read from Redis's own counters (not part
 * of `npm run bench`): `npx tsx scripts/bench/cost.ts [--n 1000] [--rounds 9] [--out bench-results]`
 *
 * Paths, N grants per round, rounds interleaved (old, new, seed, old, new, ...) so that a noisy
 * machine weighs on every column alike; the tables show the median round:
 *   uncontended  acquire.lua on a free name (granted) + release.lua, one name, one session;
 *   hand-off     QUEUED waiters of SESSIONS sessions queued behind a holder on one name (liveness
 *                60 s, refreshed by every enqueue: all alive throughout); one round = release.lua
 *                by the holder (grants the head: one PUBLISH, delivered to a subscribed
 *                connection) + acquire.lua enqueuing one more waiter;
 *   seed         SET key token NX PX 5000 + the compare-and-delete script (EVALSHA), per grant;
 *   floor        two EVALSHA of a script that only reads TIME and returns: the least any
 *                two-script grant costs on this machine.
 * Figures: `INFO commandstats` after `CONFIG RESETSTAT`, and the CPU time of Redis's main thread
 * (`INFO cpu`: unlike usec, not inflated when the OS preempts Redis mid-script on a busy machine,
 * but it includes the socket I/O of every call). "(min)": the cheapest round, the least disturbed.
 * EVALSHA's usec includes the commands the script runs (those are also counted in their own rows:
 * "nested"; the rest of it is the Lua code itself and the calls between Lua and Redis). The split per script runs each
 * script alone in its own phase, one call on each of SPLIT names in the same state as the one name
 * above (SLOWLOG cannot split it: with it on, Redis logs every nested command too, inside the
 * script's own time). Every reply is checked and every hand-off's wake-up counted, so a path that
 * went astray fails instead of measuring something else. The bodies are built as the clients
 * build them (lua-bodies.ts); the new ones are first checked against a real FairLocks's SHAs.
 * Old protocol: `git show f76efb3:src/lua/*.lua` (OLD_REV=rev to change), each script prepended
 * with common.lua as the old src/scripts.ts did; skipped, saying why, when git has no such history. `--lua-dir DIR` adds a third column, "patched": a copy of
 * src/protocol/lua with changes under test (the bodies built the same way), against "new".
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from 'redis';
import { FairLocks } from '../../src/index.js';
import { sleep } from './clock.js';
import { COMPARE_AND_DELETE, OLD_REV, newProtocol, oldProtocol, shaOf, type Protocol } from './lua-bodies.js';
import { startBenchRedis } from './redis-server.js';

const USAGE = 'usage: npx tsx scripts/bench/cost.ts [--n GRANTS_PER_ROUND] [--rounds R] [--queued W] [--lua-dir DIR] [--out DIR] [--no-json]';
const flags = new Map<string, string>();
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]!;
  if (a === '-h' || a === '--help') {
    console.log(USAGE);
    process.exit(0);
  }
  const m = /^--(n|rounds|queued|lua-dir|out|no-json)(?:=(.*))?$/.exec(a);
  if (!m) throw new Error(`unexpected argument "${a}"\n${USAGE}`);
  flags.set(m[1]!, m[1] === 'no-json' ? '1' : (m[2] ?? process.argv[++i] ?? ''));
}
const int = (k: string, d: number) => {
  const n = Number(flags.get(k) ?? d);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${k} must be a positive integer`);
  return n;
};
const N = int('n', 1000);
const ROUNDS = int('rounds', 9);
const QUEUED = int('queued', 15);
const SESSIONS = 4;
const LIVENESS_MS = 60_000;
const WARMUP = 200;
/** Names the per-script split spreads its calls over (each phase: one call per name). */
const SPLIT = Math.min(N, 500);
/** Targets of issue 9, on the new protocol. */
const TARGET_UNCONTENDED_US = 12;
const TARGET_HANDOFF_US = 2 * TARGET_UNCONTENDED_US;

/** Commands of the measuring itself, never counted. */
const OURS = /^(info|ping|hello|select|subscribe|config\|.*|script\|.*|client\|.*)$/;

/** One measured stretch: what INFO commandstats counted over `units` grants (or script calls). */
interface Phase {
  units: number;
  /** Commands the client sent itself (EVALSHA; the seed's SET too): all others ran inside scripts. */
  topLevel: number;
  scriptCalls: number;
  luaUs: number;
  /** usec of the top-level commands (a script's includes what it ran). */
  redisUs: number;
  commands: number;
  byCommand: Record<string, number>;
  /** usec of each command; a nested one's is also inside its script's. */
  usecByCommand: Record<string, number>;
  /** usec inside the commands the scripts ran. */
  nestedUs: number;
  /** CPU time of Redis's main thread over the phase (INFO cpu): not inflated by preemption, but it includes the socket I/O. */
  cpuUs: number;
}

const addMaps = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries([...new Set([...Object.keys(a), ...Object.keys(b)])].map((k) => [k, (a[k] ?? 0) + (b[k] ?? 0)]));

const addPhases = (a: Phase, b: Phase): Phase => ({
  units: a.units + b.units,
  topLevel: a.topLevel + b.topLevel,
  scriptCalls: a.scriptCalls + b.scriptCalls,
  luaUs: a.luaUs + b.luaUs,
  redisUs: a.redisUs + b.redisUs,
  commands: a.commands + b.commands,
  byCommand: addMaps(a.byCommand, b.byCommand),
  usecByCommand: addMaps(a.usecByCommand, b.usecByCommand),
  nestedUs: a.nestedUs + b.nestedUs,
  cpuUs: a.cpuUs + b.cpuUs,
});

/** Medians over the rounds, per unit (grant, or script call for the split rows). */
interface Row {
  luaUs: number;
  /** The cheapest round's luaUs: preemption on a busy machine only ever adds. */
  luaUsMin: number;
  /** Of luaUs: inside the commands the scripts ran (their own usec). */
  nestedUs: number;
  /** Of luaUs: the rest, the Lua code itself and the calls between Lua and Redis. */
  luaOwnUs: number;
  /** Redis main-thread CPU per unit, socket I/O included; and its cheapest round. */
  cpuUs: number;
  cpuUsMin: number;
  redisUs: number;
  commands: number;
  nestedPerScriptCall: number;
  byCommand: Record<string, number>;
  usecByCommand: Record<string, number>;
  /** Lua µs per unit of each round, in order: the spread the median hides. */
  rounds: number[];
}

const redis = await startBenchRedis();
const clients: { quit(): Promise<unknown> }[] = [];
try {
  const client = createClient({ url: redis.url, socket: { reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  clients.push(client);
  const send = (args: string[]) => client.sendCommand(args) as Promise<unknown>;
  const version = /redis_version:(\S+)/.exec(String(await send(['INFO', 'server'])))?.[1] ?? '?';

  const neu = newProtocol();
  const old = oldProtocol();
  const patched = flags.get('lua-dir') ? newProtocol(flags.get('lua-dir'), undefined, 'patched') : undefined;
  const protocols: Protocol[] = [...(typeof old === 'string' ? [] : [old]), neu, ...(patched ? [patched] : [])];
  if (typeof old === 'string') console.log(`old protocol skipped: ${old}`);

  // The bodies must be what the client sends: a real FairLocks run leaves exactly its scripts in the cache.
  await send(['SCRIPT', 'FLUSH']);
  {
    const c2 = createClient({ url: redis.url, socket: { reconnectStrategy: false } });
    c2.on('error', () => undefined);
    await c2.connect();
    const locks = new FairLocks(c2 as never, { prefix: 'verify' });
    await (await locks.lock('x').acquire()).release();
    await locks.close();
    await c2.quit();
    const exists = (await send(['SCRIPT', 'EXISTS', shaOf(neu.body('acquire')), shaOf(neu.body('release'))])) as unknown[];
    if (exists.some((x) => Number(x) !== 1)) {
      throw new Error('lua-bodies.ts builds the new scripts differently from src/protocol/scripts.ts (SHA mismatch)');
    }
    await send(['FLUSHALL']);
  }

  // A connection subscribed to every wake-up channel, so that each PUBLISH delivers (as in use).
  const sub = createClient({ url: redis.url, socket: { reconnectStrategy: false } });
  sub.on('error', () => undefined);
  await sub.connect();
  clients.push(sub);
  const wakes = new Map<string, number>();
  const sid = (p: Protocol, i: number) => `${p.name}sess${i % SESSIONS}`;
  for (const p of protocols) {
    for (let i = 0; i < SESSIONS; i++) {
      await sub.subscribe(`${p.name}:wake:${sid(p, i)}`, () => wakes.set(p.name, (wakes.get(p.name) ?? 0) + 1));
    }
  }

  /** `top`: the commands each step sends itself. */
  async function measure(n: number, top: string[], step: (i: number) => Promise<void>): Promise<Phase> {
    await send(['CONFIG', 'RESETSTAT']);
    const cpu0 = await cpu();
    for (let i = 0; i < n; i++) await step(i);
    const cpu1 = await cpu();
    const text = String(await send(['INFO', 'commandstats']));
    const byCommand: Record<string, number> = {};
    const usec: Record<string, number> = {};
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
      if (OURS.test(m[1]!)) continue;
      byCommand[m[1]!] = Number(m[2]);
      usec[m[1]!] = Number(m[3]);
    }
    const tops = new Set(top);
    return {
      units: n,
      // by count, not by name: the seed's SET is sent by us, the old protocol's SETs run in its scripts
      topLevel: top.length * n,
      scriptCalls: byCommand.evalsha ?? 0,
      luaUs: usec.evalsha ?? 0,
      redisUs: [...new Set(top)].reduce((a, k) => a + (usec[k] ?? 0), 0),
      commands: Object.values(byCommand).reduce((a, b) => a + b, 0),
      byCommand,
      usecByCommand: usec,
      nestedUs: Object.entries(usec).reduce((a, [k, v]) => a + (tops.has(k) ? 0 : v), 0),
      cpuUs: (cpu1 - cpu0) * 1e6,
    };
  }

  /** Seconds of CPU of Redis's main thread (the whole process on a server too old to say). */
  async function cpu(): Promise<number> {
    const text = String(await send(['INFO', 'cpu']));
    const f = (k: string) => Number(new RegExp(`^${k}:(\\S+)`, 'm').exec(text)?.[1] ?? NaN);
    const main = f('used_cpu_sys_main_thread') + f('used_cpu_user_main_thread');
    return Number.isFinite(main) ? main : f('used_cpu_sys') + f('used_cpu_user');
  }

  const expect = (what: string, reply: unknown, code: number | string) => {
    const got = Array.isArray(reply) ? Number(reply[0]) : reply;
    if (got !== code) throw new Error(`${what}: expected reply ${code}, got ${JSON.stringify(reply)}`);
  };
  const load = async (body: string) => String(await send(['SCRIPT', 'LOAD', body]));

  /** Measurements of one protocol (or the seed): each returns the phases it measured, by row key. */
  interface Runner {
    label: string;
    run(): Promise<[string, Phase][]>;
  }

  async function protocolRunner(p: Protocol): Promise<Runner> {
    const acq = await load(p.body('acquire'));
    const rel = await load(p.body('release'));
    const prefix = p.name;
    let seq = 0;
    const acquire = async (keys: string[], id: string, code: number) =>
      expect(`${p.name} acquire`, await send(['EVALSHA', acq, ...keys, id, ...p.acquireArgs(LIVENESS_MS, 'wait', prefix)]), code);
    const release = async (keys: string[], id: string) => expect(`${p.name} release`, await send(['EVALSHA', rel, ...keys, id, prefix]), 1);

    /** A name with a holder and QUEUED waiters behind it; queue[0] holds. */
    const hot = async (name: string) => {
      const keys = p.keys(prefix, name);
      const queue: string[] = [];
      const enqueue = async (code: number) => {
        const id = p.id(sid(p, seq), ++seq);
        await acquire(keys, id, code);
        queue.push(id);
      };
      await enqueue(1);
      for (let i = 0; i < QUEUED; i++) await enqueue(2);
      return { handOff: () => release(keys, queue.shift()!), enqueue: () => enqueue(2) };
    };
    const free = (name: string) => {
      const keys = p.keys(prefix, name);
      let id = '';
      return {
        acquire: () => acquire(keys, (id = p.id(sid(p, 0), ++seq)), 1),
        release: () => release(keys, id),
      };
    };
    const wakesSeen = async (n: number) => {
      for (let i = 0; i < 1_000 && (wakes.get(p.name) ?? 0) < n; i++) await sleep(2);
      if ((wakes.get(p.name) ?? 0) !== n) throw new Error(`${p.name}: ${wakes.get(p.name) ?? 0} wake-ups for ${n} hand-offs`);
    };
    let handOffs = 0;

    const one = free('free');
    const grant = async () => {
      await one.acquire();
      await one.release();
    };
    const hotOne = await hot('hot');
    const round = async () => {
      await hotOne.handOff();
      await hotOne.enqueue();
      handOffs++;
    };
    const frees = Array.from({ length: SPLIT }, (_, j) => free(`free-${j}`));
    const hots: Awaited<ReturnType<typeof hot>>[] = [];
    for (let j = 0; j < SPLIT; j++) hots.push(await hot(`hot-${j}`));
    for (let i = 0; i < WARMUP; i++) {
      await grant();
      await round();
    }
    for (const f of frees) {
      await f.acquire();
      await f.release();
    }
    await wakesSeen(handOffs);
    return {
      label: p.name,
      async run() {
        const out: [string, Phase][] = [];
        out.push([`uncontended ${p.name}`, await measure(N, ['evalsha', 'evalsha'], grant)]);
        const before = handOffs;
        out.push([`hand-off ${p.name}`, await measure(N, ['evalsha', 'evalsha'], round)]);
        await wakesSeen(before + N);
        // the split: each script alone, one call per name
        let a: Phase | undefined;
        let b: Phase | undefined;
        let c: Phase | undefined;
        let d: Phase | undefined;
        const sum = (x: Phase | undefined, y: Phase) => (x ? addPhases(x, y) : y);
        for (let done = 0; done < N; done += SPLIT) {
          a = sum(a, await measure(SPLIT, ['evalsha'], (j) => frees[j]!.acquire()));
          b = sum(b, await measure(SPLIT, ['evalsha'], (j) => frees[j]!.release()));
          c = sum(c, await measure(SPLIT, ['evalsha'], (j) => hots[j]!.handOff()));
          handOffs += SPLIT;
          d = sum(d, await measure(SPLIT, ['evalsha'], (j) => hots[j]!.enqueue()));
        }
        await wakesSeen(handOffs);
        out.push([`uncontended ${p.name}: acquire (granted)`, a!], [`uncontended ${p.name}: release (nobody waits)`, b!]);
        out.push([`hand-off ${p.name}: release (grants the head)`, c!], [`hand-off ${p.name}: acquire (enqueue)`, d!]);
        return out;
      },
    };
  }

  async function seedRunner(): Promise<Runner> {
    const cad = await load(COMPARE_AND_DELETE);
    let seq = 0;
    const free = (key: string) => {
      let token = '';
      return {
        async set() {
          token = `t${++seq}`;
          expect('seed SET NX', await send(['SET', key, token, 'NX', 'PX', '5000']), 'OK');
        },
        del: async () => expect('seed compare-and-delete', await send(['EVALSHA', cad, '1', key, token]), 1),
      };
    };
    const one = free('seed:{free}');
    const grant = async () => {
      await one.set();
      await one.del();
    };
    const frees = Array.from({ length: SPLIT }, (_, j) => free(`seed:{free-${j}}`));
    for (let i = 0; i < WARMUP; i++) await grant();
    return {
      label: 'seed',
      async run() {
        const out: [string, Phase][] = [['uncontended seed', await measure(N, ['set', 'evalsha'], grant)]];
        let a: Phase | undefined;
        let b: Phase | undefined;
        for (let done = 0; done < N; done += SPLIT) {
          const x = await measure(SPLIT, ['set'], (j) => frees[j]!.set());
          const y = await measure(SPLIT, ['evalsha'], (j) => frees[j]!.del());
          a = a ? addPhases(a, x) : x;
          b = b ? addPhases(b, y) : y;
        }
        out.push(['uncontended seed: SET NX PX', a!], ['uncontended seed: compare-and-delete', b!]);
        return out;
      },
    };
  }

  /** The least two scripts per grant can cost here: EVALSHA of a script that reads the clock and returns. */
  async function floorRunner(): Promise<Runner> {
    const noop = await load(`local t = redis.call('TIME') return {1, tonumber(t[1])}`);
    const grant = async () => {
      expect('floor', await send(['EVALSHA', noop, '0']), 1);
      expect('floor', await send(['EVALSHA', noop, '0']), 1);
    };
    for (let i = 0; i < WARMUP; i++) await grant();
    return { label: 'floor', run: async () => [['uncontended floor', await measure(N, ['evalsha', 'evalsha'], grant)]] };
  }

  const runners: Runner[] = [];
  for (const p of protocols) runners.push(await protocolRunner(p));
  runners.push(await seedRunner(), await floorRunner());
  const got = new Map<string, Phase[]>();
  const t0 = Date.now();
  for (let r = 0; r < ROUNDS; r++) {
    for (const x of runners) for (const [k, ph] of await x.run()) got.set(k, [...(got.get(k) ?? []), ph]);
    process.stderr.write(`round ${r + 1}/${ROUNDS} done (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  }

  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const r2 = (x: number) => Math.round(x * 100) / 100;
  const summarize = (phases: Phase[]): Row => {
    const per = (f: (p: Phase) => number) => r2(median(phases.map((p) => f(p) / p.units)));
    const names = new Set(phases.flatMap((p) => Object.keys(p.byCommand)));
    return {
      luaUs: per((p) => p.luaUs),
      luaUsMin: r2(Math.min(...phases.map((p) => p.luaUs / p.units))),
      nestedUs: per((p) => p.nestedUs),
      luaOwnUs: per((p) => p.luaUs - p.nestedUs),
      cpuUs: per((p) => p.cpuUs),
      cpuUsMin: r2(Math.min(...phases.map((p) => p.cpuUs / p.units))),
      redisUs: per((p) => p.redisUs),
      commands: per((p) => p.commands),
      nestedPerScriptCall: r2(median(phases.map((p) => (p.scriptCalls ? (p.commands - p.topLevel) / p.scriptCalls : 0)))),
      byCommand: Object.fromEntries([...names].sort().map((k) => [k, per((p) => p.byCommand[k] ?? 0)])),
      usecByCommand: Object.fromEntries([...names].sort().map((k) => [k, per((p) => p.usecByCommand[k] ?? 0)])),
      rounds: phases.map((p) => r2(p.luaUs / p.units)),
    };
  };
  const rows: Record<string, Row> = Object.fromEntries([...got].map(([k, v]) => [k, summarize(v)]));
  const ratio = (a: number | undefined, b: number | undefined, of = '') => (a !== undefined && b ? `${(a / b).toFixed(2)}x${of}` : 'n/a');
  const f2 = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(2));

  const lines: string[] = [];
  const out = (s = '') => lines.push(s);
  out(`**Redis cost per grant** (median of ${ROUNDS} rounds of ${N} grants; Redis ${version}; Lua µs = EVALSHA usec, which includes the commands the script runs)`);
  out();
  out('| path | protocol | Lua µs / grant (min) | of which in nested cmds | of which Lua itself | Redis µs / grant | Redis CPU µs / grant (min) | cmds / grant (scripts + nested) | nested cmds / script call | Lua µs ratio: median (min) |');
  out('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const labels = [...protocols.map((p) => p.name), 'seed', 'floor'];
  const what = (label: string) =>
    label === 'seed' ? 'seed: SET NX PX + compare-and-delete' : label === 'floor' ? 'floor: 2 scripts of TIME + return' : label === 'old' ? `old (${OLD_REV})` : label === 'new' ? 'new (working tree)' : `patched (${patched?.source})`;
  for (const path of ['uncontended', 'hand-off']) {
    for (const label of labels) {
      const x = rows[`${path} ${label}`];
      if (!x) continue;
      const vs = label === 'new' ? 'old' : label === 'patched' ? 'new' : undefined;
      const y = vs ? rows[`${path} ${vs}`] : undefined;
      const rel = vs ? `${ratio(x.luaUs, y?.luaUs)} (${ratio(x.luaUsMin, y?.luaUsMin)}) ${vs}` : '';
      out(`| ${path} | ${what(label)} | ${f2(x.luaUs)} (${f2(x.luaUsMin)}) | ${f2(x.nestedUs)} | ${f2(x.luaOwnUs)} | ${f2(x.redisUs)} | ${f2(x.cpuUs)} (${f2(x.cpuUsMin)}) | ${f2(x.commands)} | ${f2(x.nestedPerScriptCall)} | ${rel} |`);
    }
  }
  out();
  out(`**Per script call** (each script alone, one call on each of ${SPLIT} names in the state above; median of the rounds)`);
  out();
  const pc = patched ? ' | patched µs | patched / new | patched: in nested cmds / Lua itself' : '';
  out(`| path | script | old µs | new µs | new / old | old: in nested cmds / Lua itself | new: in nested cmds / Lua itself | old nested cmds | new nested cmds${pc} |`);
  out(`| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---:${patched ? ' | ---: | ---: | ---:' : ''} |`);
  const splits: [string, string][] = [
    ['uncontended', 'acquire (granted)'],
    ['uncontended', 'release (nobody waits)'],
    ['hand-off', 'release (grants the head)'],
    ['hand-off', 'acquire (enqueue)'],
  ];
  for (const [path, s] of splits) {
    const o = rows[`${path} old: ${s}`];
    const n = rows[`${path} new: ${s}`];
    const x = rows[`${path} patched: ${s}`];
    const px = patched ? ` | ${f2(x?.luaUs)} | ${ratio(x?.luaUs, n?.luaUs)} | ${f2(x?.nestedUs)} / ${f2(x?.luaOwnUs)}` : '';
    out(`| ${path} | ${s} | ${f2(o?.luaUs)} | ${f2(n?.luaUs)} | ${ratio(n?.luaUs, o?.luaUs)} | ${f2(o?.nestedUs)} / ${f2(o?.luaOwnUs)} | ${f2(n?.nestedUs)} / ${f2(n?.luaOwnUs)} | ${f2(o?.nestedPerScriptCall)} | ${f2(n?.nestedPerScriptCall)}${px} |`);
  }
  const seedSet = rows['uncontended seed: SET NX PX'];
  const seedDel = rows['uncontended seed: compare-and-delete'];
  out(`| uncontended | seed: SET NX PX (not a script) / compare-and-delete | | ${f2(seedSet?.redisUs)} / ${f2(seedDel?.luaUs)} | | | ${f2(seedDel?.nestedUs)} / ${f2(seedDel?.luaOwnUs)} | | ${f2(seedDel?.nestedPerScriptCall)}${patched ? ' | | |' : ''} |`);
  out();
  out('**Commands per grant, by name: calls (µs)** (the scripts and the commands they run; a nested command\'s µs are also in its script\'s)');
  out();
  const cols = [...got.keys()].filter((k) => !k.includes(':'));
  const cmdNames = [...new Set(cols.flatMap((k) => Object.keys(rows[k]!.byCommand)))].sort();
  out(`| command | ${cols.join(' | ')} |`);
  out(`| --- | ${cols.map(() => '---:').join(' | ')} |`);
  for (const c of cmdNames) {
    out(`| ${c} | ${cols.map((k) => (rows[k]!.byCommand[c] ? `${f2(rows[k]!.byCommand[c])} (${f2(rows[k]!.usecByCommand[c])})` : '')).join(' | ')} |`);
  }
  out();
  const un = rows['uncontended new']?.luaUs;
  const ho = rows['hand-off new']?.luaUs;
  const mark = (x: number | undefined, goal: number) => (x === undefined ? 'n/a' : x <= goal ? 'met' : '**not met**');
  out('**Targets (issue 9), new protocol**');
  out();
  out('| target | goal | value | |');
  out('| --- | ---: | ---: | --- |');
  out(`| Lua per uncontended grant | <= ${TARGET_UNCONTENDED_US} µs | ${f2(un)} µs | ${mark(un, TARGET_UNCONTENDED_US)} |`);
  out(`| Lua per hand-off grant | <= ${TARGET_HANDOFF_US} µs (2x the above) | ${f2(ho)} µs | ${mark(ho, TARGET_HANDOFF_US)} |`);
  if (patched) {
    const pu = rows['uncontended patched']?.luaUs;
    const ph = rows['hand-off patched']?.luaUs;
    out(`| patched: Lua per uncontended grant | <= ${TARGET_UNCONTENDED_US} µs | ${f2(pu)} µs | ${mark(pu, TARGET_UNCONTENDED_US)} |`);
    out(`| patched: Lua per hand-off grant | <= ${TARGET_HANDOFF_US} µs | ${f2(ph)} µs | ${mark(ph, TARGET_HANDOFF_US)} |`);
  }
  out();
  out(`Lua µs per grant in each round: ${cols.map((k) => `${k} [${rows[k]!.rounds.join(', ')}]`).join('; ')}`);
  const floor = rows['uncontended floor'];
  if (floor && floor.luaUs > 1.2 * floor.luaUsMin) {
    out(`\nThe machine was busy: the floor's median round is ${ratio(floor.luaUs, floor.luaUsMin)} its cheapest (Redis was preempted mid-script); compare the (min) figures, or run again.`);
  }
  if (typeof old === 'string') out(`\nold protocol: not measured (${old})`);
  console.log(lines.join('\n'));

  if (!flags.has('no-json')) {
    const dir = flags.get('out') || 'bench-results';
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'cost.json');
    const json = {
      meta: {
        date: new Date().toISOString(),
        command: `npx tsx scripts/bench/cost.ts${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
        redis: version,
        node: process.versions.node,
        grantsPerRound: N,
        rounds: ROUNDS,
        queued: QUEUED,
        sessions: SESSIONS,
        splitNames: SPLIT,
        old: typeof old === 'string' ? { skipped: old } : { source: old.source },
        new: { source: neu.source },
        ...(patched ? { patched: { source: patched.source } } : {}),
      },
      /** Per grant (per script call for the "path protocol: script" rows), medians over the rounds. */
      rows,
      targets: [
        { what: 'Lua µs per uncontended grant (new)', goal: `<= ${TARGET_UNCONTENDED_US}`, value: un ?? null, met: un === undefined ? null : un <= TARGET_UNCONTENDED_US },
        { what: 'Lua µs per hand-off grant (new)', goal: `<= ${TARGET_HANDOFF_US}`, value: ho ?? null, met: ho === undefined ? null : ho <= TARGET_HANDOFF_US },
      ],
    };
    writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
    console.log(`\nraw figures: ${file}`);
  }
} finally {
  for (const c of clients) await c.quit().catch(() => undefined);
  await redis.stop();
}
