/**
 * Instructions Redis executes per engine call pair, counted by valgrind (callgrind), so that engine
 * changes can be compared on a loaded machine, where commandstats usec and used_cpu move by 30%
 * from run to run (not part of `npm run bench`; needs valgrind). Each path runs on a redis-server
 * of its own under callgrind, once with 0 and once with N repetitions: (Ir(N) - Ir(0)) / N. The
 * calls go from this client as the library sends them (FCALL or EVALSHA, the reply read back), so
 * the figures include the command's dispatch, not the kernel's share of the I/O.
 *
 *   npx tsx scripts/bench/engine-instructions.ts [--n 300] [--engine path/to/engine.lua] [--only 'master 1,probe'] [--keep DIR]
 *
 * Paths: node-redlock's pair (its acquire and release scripts, EVALSHA), an empty FCALL pair and an
 * empty EVALSHA pair with the quorum acquire's arguments (the dispatch floors), a pair of FCALLs each
 * running only the commands an engine call needs at least (TIME, HMGET, LPOP, HSET), and the
 * engine's: a quorum master 1's pair (acquire granted at once, release with nobody queued), the same
 * pair by EVALSHA (as on Redis 6.2, where every call builds the engine's closures again), master 0's
 * cycle (two acquires, one granted and one queued, a hand-off release, a release), one contended
 * quorum acquisition in its steady state (what the bench's contention run costs per grant: master 0's
 * enqueue and hand-off with a handover, master 1's acquire naming the old holder's grant), and
 * single-node uncontended.
 * Probes split an engine call up (the library's local functions are in scope of its registrations):
 * parsing acquire's arguments, load() of a used name's state, and 40 small tables and strings made
 * and dropped (what making objects costs in Redis's Lua). --only keeps the paths whose
 * names contain one of its comma-separated parts. --keep DIR keeps each run's callgrind file there
 * (`<path>.<repetitions>.out`): with the redis-server first on PATH built with symbols (Redis's
 * source at the installed version, `make OPTIMIZATION=-O2 CFLAGS=-g`), `callgrind_annotate` of the N
 * run less the 0 run splits a path by function (dispatch, the commands, the Lua's strings and GC).
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import { freePort } from '../../src/cli/redis-server.js';
import { luaReplyConstants } from '../../src/protocol/codes.js';
import { sleep } from './clock.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '300' }, engine: { type: 'string' }, only: { type: 'string' }, keep: { type: 'string' } } });
const N = Number(values.n);
const ENGINE = values.engine ?? new URL('../../src/protocol/lua/engine.lua', import.meta.url).pathname;

// node-redlock 5's scripts, as it sends them
const RL_ACQUIRE = 'for i, key in ipairs(KEYS) do if redis.call("exists", key) == 1 then return 0 end end for i, key in ipairs(KEYS) do redis.call("set", key, ARGV[1], "PX", ARGV[2]) end return #KEYS';
const RL_RELEASE = 'local count = 0 for i, key in ipairs(KEYS) do if redis.call("get", key) == ARGV[1] then redis.pcall("del", key) count = count + 1 end end return count';
const LIBRARY = () => `#!lua name=count\n${luaReplyConstants()}\n${readFileSync(ENGINE, 'utf8')}
redis.register_function('a', ENTRY.acquire)
redis.register_function('r', ENTRY.release)
redis.register_function('empty', function() return {1, 2, 3, 4} end)
redis.register_function('p_load', function(k) load(k, read_state(k)) return {1, 2, 3, 4} end)
redis.register_function('p_parse', function(k, a) parse_id(a[1]) parse_kind_limit(a[5]) quorum_number(a[8]) quorum_number(a[9]) return {1, 2, 3, 4} end)
redis.register_function('p_garbage', function(k, a) local t = {} for i = 1, 40 do t[i] = { i, a[1] .. i } end return {1, 2, 3, 4} end)
redis.register_function('least', function(k)
  redis.call('TIME')
  redis.call('HMGET', k[1], 'k', 't', 'h', 'r', 's', 'x', 'g', 'b')
  redis.call('LPOP', k[2])
  redis.call('HSET', k[1], 'z', '1')
  return {1, 2, 3, 4}
end)`;

type Client = ReturnType<typeof createClient>;
const WAKE = 'Pc:wake:';
const Q = ['3', 'c:{hot}:state', 'c:{hot}:queue', 'c:born'];
const M1 = ['3', 'c:{m1}:state', 'c:{m1}:queue', 'c:born'];
/** The holder of master 0's name in the contended path, from one repetition to the next. */
const contended: { holder?: string; m1?: string } = {};
let seq = 1;
const waiter = (sid: number) => `100000000000000${sid}:${seq++}:5000:1:1:x`;
/** A quorum acquire's keys and arguments, as the library sends them (liveness 15 s unless given; prev: a grant handed over). */
const acquireArgs = (id: string, floor: string, keys = Q, liveness = '15000', prev?: string) => [...keys, id, liveness, 'wait', WAKE, 'lock 1', '', '', floor, '5000', ...(prev ? [prev] : [])];
/** A release's keys (the name's state and queue, master 0's unless given) and arguments (handover: a quorum holder's). */
const releaseArgs = (id: string, keys = [Q[1]!, Q[2]!], handover?: string) => ['2', ...keys, id, WAKE, ...(handover ? [handover] : [])];
const quorumAcquire = (c: Client, id: string, floor: string, keys = Q, liveness?: string, prev?: string) => c.sendCommand(['FCALL', 'a', ...acquireArgs(id, floor, keys, liveness, prev)]);
const release = (c: Client, keys: string[], id: string, handover?: string) => c.sendCommand(['FCALL', 'r', ...releaseArgs(id, keys, handover)]);

type Shas = { acquire: string; release: string; empty: string; engineAcquire: string; engineRelease: string };
const PATHS: Record<string, (c: Client, sha: Shas) => Promise<unknown>> = {
  'redlock: acquire + release (EVALSHA)': async (c, sha) => {
    const v = `v${seq++}`;
    await c.sendCommand(['EVALSHA', sha.acquire, '1', 'rl:hot', v, '5000']);
    await c.sendCommand(['EVALSHA', sha.release, '1', 'rl:hot', v]);
  },
  'FCALL pair, empty function (dispatch floor)': async (c) => {
    await c.sendCommand(['FCALL', 'empty', ...acquireArgs(waiter(1), '1')]);
    await c.sendCommand(['FCALL', 'empty', ...releaseArgs(waiter(1))]);
  },
  'EVALSHA pair, empty script (dispatch floor)': async (c, sha) => {
    await c.sendCommand(['EVALSHA', sha.empty, ...acquireArgs(waiter(1), '1')]);
    await c.sendCommand(['EVALSHA', sha.empty, ...releaseArgs(waiter(1))]);
  },
  'EVALSHA quorum master 1: acquire granted + release': async (c, sha) => {
    const id = waiter(1);
    await c.sendCommand(['EVALSHA', sha.engineAcquire, ...acquireArgs(id, String(Date.now() * 1000))]);
    await c.sendCommand(['EVALSHA', sha.engineRelease, ...releaseArgs(id)]);
  },
  'FCALL pair, TIME+HMGET+LPOP+HSET only': async (c) => {
    await c.sendCommand(['FCALL', 'least', ...acquireArgs(waiter(1), '1')]);
    await c.sendCommand(['FCALL', 'least', ...releaseArgs(waiter(1))]);
  },
  'probe: FCALL pair, each parses the args as acquire does': async (c) => {
    await c.sendCommand(['FCALL', 'p_parse', ...acquireArgs(waiter(1), '1')]);
    await c.sendCommand(['FCALL', 'p_parse', ...acquireArgs(waiter(1), '1')]);
  },
  'probe: FCALL pair, each load()s a state as master 1 sees it': async (c) => {
    await c.sendCommand(['FCALL', 'p_load', ...acquireArgs(waiter(1), '1')]);
    await c.sendCommand(['FCALL', 'p_load', ...acquireArgs(waiter(1), '1')]);
  },
  'probe: FCALL pair, each makes 40 small tables and strings': async (c) => {
    await c.sendCommand(['FCALL', 'p_garbage', ...acquireArgs(waiter(1), '1')]);
    await c.sendCommand(['FCALL', 'p_garbage', ...acquireArgs(waiter(1), '1')]);
  },
  'quorum master 1: acquire granted + release': async (c) => {
    const id = waiter(1);
    await quorumAcquire(c, id, String(Date.now() * 1000));
    await release(c, [Q[1]!, Q[2]!], id);
  },
  'quorum master 0: 2 acquires + hand-off + release': async (c) => {
    const a = waiter(2);
    const b = waiter(3);
    await quorumAcquire(c, a, '');
    await quorumAcquire(c, b, '');
    await release(c, [Q[1]!, Q[2]!], a);
    await release(c, [Q[1]!, Q[2]!], b);
  },
  'quorum: one contended acquisition (master 0 enqueue + hand-off with a handover, master 1 acquire naming prev)': async (c) => {
    // Steady contention: the next waiter queues behind the holder on master 0, the holder's release
    // hands master 0 on with its master 1 grant in the handover, the new holder's acquire on master 1
    // releases that grant and takes master 1 (QuorumLease's release). 8 sessions whose deadlines stay
    // far off (liveness 10 min: heartbeats keep them so), as in the bench's contention run.
    const next = waiter(1 + (seq % 8));
    const far = '600000';
    if (!contended.holder) {
      contended.holder = waiter(9);
      await quorumAcquire(c, contended.holder, '', Q, far);
      contended.m1 = waiter(9);
      await quorumAcquire(c, contended.m1, String(Date.now() * 1000), M1, far);
    }
    await quorumAcquire(c, next, '', Q, far);
    await release(c, [Q[1]!, Q[2]!], contended.holder, `1=${contended.m1}`);
    contended.holder = next;
    const id = waiter(1 + (seq % 8));
    await quorumAcquire(c, id, String(Date.now() * 1000), M1, far, contended.m1);
    contended.m1 = id;
  },
  'single-node: acquire + release, a new name each': async (c) => {
    const id = waiter(1);
    const keys = [`s:{n${seq}}:state`, `s:{n${seq}}:queue`];
    await c.sendCommand(['FCALL', 'a', '2', ...keys, id, '15000', 'wait', WAKE, 'lock 1', '', '']);
    await release(c, keys, id);
  },
};

/** Ir of one redis-server run under callgrind that serves `reps` repetitions of `path` (after 10 unmeasured ones, in both runs). */
async function instructions(path: string, reps: number): Promise<number> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fairlock-ir-'));
  const out = join(dir, 'callgrind.out');
  const p = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, 'redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  try {
    const c = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
    c.on('error', () => undefined);
    for (let i = 0; ; i++) {
      try {
        await c.connect();
        break;
      } catch (err) {
        if (i >= 150) throw err;
        await sleep(200);
      }
    }
    await c.sendCommand(['FUNCTION', 'LOAD', LIBRARY()]);
    const load = async (body: string) => String(await c.sendCommand(['SCRIPT', 'LOAD', body]));
    const engine = `${luaReplyConstants()}\n${readFileSync(ENGINE, 'utf8')}`;
    const sha: Shas = {
      acquire: await load(RL_ACQUIRE),
      release: await load(RL_RELEASE),
      empty: await load('return {1, 2, 3, 4}'),
      engineAcquire: await load(`${engine}\nreturn ENTRY.acquire(KEYS, ARGV)`),
      engineRelease: await load(`${engine}\nreturn ENTRY.release(KEYS, ARGV)`),
    };
    await c.sendCommand(['HSET', 'c:born', 'b', '1']); // the restart guard long passed
    // a name as master 1 sees it after some use (released ids, a session), in both runs: the probes read it
    for (let i = 0; i < 10; i++) await PATHS['quorum master 1: acquire granted + release']!(c, sha);
    for (let i = 0; i < 10 + reps; i++) await PATHS[path]!(c, sha);
    await c.sendCommand(['SHUTDOWN', 'NOSAVE']).catch(() => undefined);
    await c.disconnect().catch(() => undefined);
    await Promise.race([exited, sleep(30_000)]);
    if (values.keep) copyFileSync(out, join(values.keep, `${path.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '')}.${reps}.out`));
    const totals = /^(?:summary|totals): (\d+)/m.exec(readFileSync(out, 'utf8'));
    if (!totals) throw new Error(`${path}: no callgrind totals`);
    return Number(totals[1]);
  } finally {
    if (p.exitCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (values.keep) mkdirSync(values.keep, { recursive: true });
console.log(`instructions per repetition (callgrind Ir, (N - 0) / N, N = ${N}), engine ${ENGINE}`);
for (const path of Object.keys(PATHS).filter((p) => !values.only || values.only.split(',').some((o) => p.includes(o)))) {
  const base = await instructions(path, 0);
  const ir = (await instructions(path, N)) - base;
  console.log(`${path.padEnd(52)} ${Math.round(ir / N).toLocaleString('en')}`);
}
