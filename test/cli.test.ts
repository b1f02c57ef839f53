/**
 * The `fairlock` command (the built binary, against a real redis-server): concurrent execs run one at
 * a time in queue order, with FAIRLOCK_* in the environment and the exit code passed on; each failure
 * has its own exit code and one-line message; signals, timeouts and a lost lease stop cleanly and
 * release; --permits/--read/--write, status, --help and the demo do what they say.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import type { FairLocks, Lease } from '../src/index.js';
import { dropHolder } from './helpers/state.js';
import { lockKeys } from '../src/protocol/keys.js';
import type { RedisClient } from './helpers/redis-client.js';
import { killCliTree } from './helpers/cli-process.js';
import { closeClient, newLocks, openClient, ownRedis, scopeOf, trackDuplicates } from './helpers/cleanup.js';
import { connect, freePort, hasRedisBinary, newPrefix, startRedis, type RedisServer } from './helpers/redis.js';

const BIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const NODE = process.execPath;

let server: RedisServer;
let client: RedisClient;
let dir: string;
/**
 * Every fairlock process whose output pipes are still open: it, or a command it started (which
 * inherits them), still runs. Each runs in a process group of its own, and exec runs its command in
 * another: killCliTree kills the command's group, then fairlock's. Each test kills its own at its end.
 */
const started = new Set<ChildProcess>();
const killAll = (procs: Iterable<ChildProcess>) => {
  for (const p of procs) {
    if (!started.has(p) || !p.pid) continue; // 'close' came: nobody holds its pipes, its group is gone
    killCliTree(p.pid);
  }
};
process.once('exit', () => killAll(started)); // an ava timeout skips after.always

test.before(async () => {
  server = await startRedis();
  client = trackDuplicates(await connect(server.url));
  dir = mkdtempSync(join(tmpdir(), 'fairlock-cli-test-'));
});
test.after.always(async () => {
  killAll(started);
  if (client) await closeClient(client);
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  proc: ChildProcess;
  /** Resolves when the process has exited; never rejects. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/**
 * Starts `node dist/cli/main.js ...args`; its process group is killed after `limitMs` so that no test
 * can hang, and when test `t` ends, whatever its outcome.
 */
function fairlock(t: ExecutionContext, args: string[], options: { env?: NodeJS.ProcessEnv; limitMs?: number } = {}): Run {
  const scope = scopeOf(t);
  const proc = spawn(NODE, [BIN, ...args], { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  started.add(proc);
  const closed = new Promise((r) => proc.once('close', r));
  scope.add(() => (killAll([proc]), closed));
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const limit = setTimeout(() => killAll([proc]), options.limitMs ?? 30_000);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    proc.once('close', (code, signal) => {
      clearTimeout(limit);
      started.delete(proc);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { proc, done };
}

const run = (t: ExecutionContext, args: string[], options?: { env?: NodeJS.ProcessEnv; limitMs?: number }) => fairlock(t, args, options).done;

/** Polls until `check` holds; fails after `timeoutMs`. */
async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function holdLock(t: ExecutionContext, prefix: string, name: string): Promise<{ locks: FairLocks; lease: Lease }> {
  const locks = newLocks(t, client, { prefix });
  const lease = await locks.lock(name).acquire({ timeoutMs: 10_000 });
  return { locks, lease };
}

const redisArgs = (prefix: string) => ['--redis', server.url, '--prefix', prefix];
const lines = (s: string) => s.trim().split('\n').filter(Boolean);

test.serial('concurrent execs run their commands one at a time, in the order they entered the queue', async (t) => {
  const prefix = newPrefix('cli');
  const out = join(dir, `${prefix}.fifo`);
  const { locks, lease } = await holdLock(t, prefix, 'q');
  // Each command writes "k token start", sleeps a little, then "k end": overlapping holders would interleave.
  const script =
    "const fs=require('fs');const [f,k]=process.argv.slice(1);" +
    "fs.appendFileSync(f,k+' '+process.env.FAIRLOCK_TOKEN+' start\\n');" +
    "setTimeout(()=>fs.appendFileSync(f,k+' end\\n'),30)";
  const runs: Run[] = [];
  for (let k = 0; k < 5; k++) {
    runs.push(fairlock(t, ['exec', 'q', ...redisArgs(prefix), '--quiet', '--', NODE, '-e', script, out, String(k)]));
    // Start the next one only once this one is in the Redis queue.
    await until(async () => (await locks.inspect('q')).queue.length === k + 1, `exec ${k} to be queued`);
  }
  t.false(existsSync(out), 'no command ran while the lock was held');
  await lease.release();
  const results = await Promise.all(runs.map((r) => r.done));
  t.deepEqual(results.map((r) => r.code), [0, 0, 0, 0, 0], results.map((r) => r.stderr).join(''));
  const written = lines(readFileSync(out, 'utf8'));
  t.deepEqual(written.map((l) => l.split(' ')[0]), ['0', '0', '1', '1', '2', '2', '3', '3', '4', '4']);
  t.deepEqual(written.map((l) => l.split(' ').at(-1)), Array(5).fill(['start', 'end']).flat());
  const tokens = written.filter((l) => l.endsWith('start')).map((l) => Number(l.split(' ')[1]));
  t.true(tokens.every((x, i) => Number.isSafeInteger(x) && (i === 0 || x > tokens[i - 1]!)), `tokens increase: ${tokens.join(' ')}`);
  t.is((await locks.inspect('q')).holder, null);
  await locks.close();
});

test.serial('the command gets FAIRLOCK_NAME, FAIRLOCK_TOKEN and FAIRLOCK_KIND, and its exit code is passed on', async (t) => {
  const prefix = newPrefix('cli');
  const name = 'reports {daily}: 100%';
  const print =
    'const e = process.env; console.log(JSON.stringify({ name: e.FAIRLOCK_NAME, token: e.FAIRLOCK_TOKEN, kind: e.FAIRLOCK_KIND, weight: e.FAIRLOCK_WEIGHT, mode: e.FAIRLOCK_MODE, group: e.FAIRLOCK_GROUP }))';
  // An outer exec's FAIRLOCK_WEIGHT / FAIRLOCK_MODE / FAIRLOCK_GROUP must not leak into an inner plain lock's command.
  const r = await run(t, ['exec', name, ...redisArgs(prefix), '--quiet', '--', NODE, '-e', `${print}; process.exit(7)`], {
    env: { ...process.env, FAIRLOCK_WEIGHT: '5', FAIRLOCK_MODE: 'write', FAIRLOCK_GROUP: 'outer' },
  });
  t.is(r.code, 7, r.stderr);
  const env = JSON.parse(r.stdout) as { name: string; token: string; kind: string; weight?: string; mode?: string; group?: string };
  t.is(env.name, name);
  t.regex(env.token, /^\d+$/);
  t.is(env.kind, 'lock');
  t.is(env.weight, undefined);
  t.is(env.mode, undefined);
  t.is(env.group, undefined);
  t.is(r.stderr, '', '--quiet prints nothing on success');
  const locks = newLocks(t, client, { prefix });
  const next = await locks.lock(name).acquire({ timeoutMs: 5_000 });
  t.true(next.token > Number(env.token), 'the lock was released and tokens go on increasing');
  await next.release();
  await locks.close();

  const killed = await run(t, ['exec', 'sig', ...redisArgs(prefix), '--quiet', '--', NODE, '-e', "process.kill(process.pid, 'SIGTERM')"]);
  t.is(killed.code, 128 + 15, 'a command killed by a signal gives 128 + N');
});

test.serial('each failure has its own exit code and a one-line message', async (t) => {
  const prefix = newPrefix('cli');
  const oneLine = (r: { stderr: string }, re: RegExp) => {
    t.is(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
    t.regex(r.stderr, re);
  };
  // Bad usage: 64.
  for (const args of [
    ['exec', 'x', ...redisArgs(prefix)], // no command
    ['exec', 'x', ...redisArgs(prefix), '--timeout', 'soon', '--', 'true'],
    ['exec', 'x', ...redisArgs(prefix), '--lease', '-5s', '--', 'true'],
    ['exec', 'x', ...redisArgs(prefix), '--timeout', '30d', '--', 'true'], // longer than a Node timer can wait
    ['exec', 'x', ...redisArgs(prefix), 'ls', '-la'], // options of the command without --
    ['exec', 'x', '--redis', 'http://127.0.0.1:1', '--', 'true'],
    ['status', 'x', '--redis', 'not a url'],
    ['nonsense'],
    [],
  ]) {
    const r = await run(t, args);
    t.is(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
    if (args.length > 0) oneLine(r, /^fairlock: /);
  }
  // Redis unreachable: 69.
  const closed = `redis://127.0.0.1:${await freePort()}`;
  for (const args of [['exec', 'x', '--redis', closed, '--', 'true'], ['status', 'x', '--redis', closed]]) {
    const r = await run(t, args);
    t.is(r.code, 69, r.stderr);
    oneLine(r, /cannot connect to Redis/);
  }
  // Timed out waiting: 75, and the waiter left the queue.
  const { locks, lease } = await holdLock(t, prefix, 'busy');
  const timedOut = await run(t, ['exec', 'busy', ...redisArgs(prefix), '--quiet', '--timeout', '300ms', '--', 'true']);
  t.is(timedOut.code, 75, timedOut.stderr);
  oneLine(timedOut, /timed out/);
  const busy = await run(t, ['exec', 'busy', ...redisArgs(prefix), '--quiet', '--timeout', '0', '--', 'true']);
  t.is(busy.code, 75, busy.stderr);
  oneLine(busy, /held or has waiters/);
  t.deepEqual((await locks.inspect('busy')).queue, []);
  await lease.release();
  await locks.close();
  // The command cannot run: 127 not found, 126 not executable; the lock is released either way.
  const notFound = await run(t, ['exec', 'x', ...redisArgs(prefix), '--quiet', '--', 'fairlock-no-such-command']);
  t.is(notFound.code, 127, notFound.stderr);
  oneLine(notFound, /command not found/);
  const plain = join(dir, 'not-executable');
  writeFileSync(plain, 'echo hi\n');
  chmodSync(plain, 0o644);
  const denied = await run(t, ['exec', 'x', ...redisArgs(prefix), '--quiet', '--', plain]);
  t.is(denied.code, 126, denied.stderr);
  oneLine(denied, /cannot execute/);
  const after = newLocks(t, client, { prefix });
  t.is((await after.inspect('x')).holder, null);
  await after.close();
});

test.serial('--permits, --weight, --read, --write, --group and --per-group that make no sense together: exit 64 with a one-line message', async (t) => {
  const prefix = newPrefix('cli');
  for (const [args, re] of [
    [['--read', '--write'], /option '--read' cannot be used with option '--write'/],
    [['--read', '--permits', '2'], /option '--read' cannot be used with option '--permits/],
    [['--write', '--weight', '1'], /option '--write' cannot be used with option '--weight/],
    [['--weight', '2'], /--weight needs --permits/],
    [['--permits', '2', '--weight', '3'], /--weight 3 is more than --permits 2/],
    [['--permits', '0'], /--permits <n>' argument '0' is invalid/],
    [['--permits', '1.5'], /--permits <n>' argument '1.5' is invalid/],
    // --group is checked by the library's own rule (checkGroup): non-empty, at most 256 UTF-8 bytes.
    [['--group', ''], /--group must be a non-empty string, got ""/],
    [['--group', 'é'.repeat(129)], /--group must be at most 256 UTF-8 bytes, got 258/],
    [['--group', 'g', '--read'], /option '--read' cannot be used with option '--group/],
    [['--per-group', '2'], /--per-group needs --permits/],
    [['--permits', '4', '--per-group', '5'], /--per-group 5 is more than --permits 4/],
    [['--permits', '4', '--per-group', '1', '--weight', '2'], /--weight 2 is more than --per-group 1/],
  ] as const) {
    const r = await run(t, ['exec', 'x', ...redisArgs(prefix), ...args, '--', 'true']);
    t.is(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
    t.is(lines(r.stderr).length, 1, r.stderr);
    t.regex(r.stderr, /^fairlock: /);
    t.regex(r.stderr, re);
  }
  const demo = await run(t, ['demo', '--permits', '4', '--workers', '4']);
  t.is(demo.code, 64, demo.stderr);
  t.regex(demo.stderr, /--permits \(4\) must be fewer than --workers \(4\)/);
  const groups = await run(t, ['demo', '--groups', '--workers', '3']);
  t.is(groups.code, 64, groups.stderr);
  t.regex(groups.stderr, /option '--groups' cannot be used with option '--workers/);
});

test.serial('SIGTERM or SIGINT while waiting leaves the queue at once and runs nothing', async (t) => {
  const prefix = newPrefix('cli');
  const marker = join(dir, `${prefix}.ran`);
  const { locks, lease } = await holdLock(t, prefix, 'w');
  for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    const r = fairlock(t, ['exec', 'w', ...redisArgs(prefix), '--', NODE, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran')`]);
    await until(async () => (await locks.inspect('w')).queue.length === 1, 'the exec to be queued');
    r.proc.kill(sig);
    const res = await r.done;
    t.is(res.code, code, res.stderr);
    t.regex(res.stderr, new RegExp(`${sig} received`));
    // Gone from the queue now, not after its liveness ran out (inspect lists live sessions' waiters).
    t.deepEqual((await locks.inspect('w')).queue, []);
    t.is(await client.lLen(lockKeys(prefix, 'w').queue), 0);
  }
  t.is((await locks.inspect('w')).holder?.token, lease.token);
  t.false(existsSync(marker));
  await lease.release();
  await locks.close();
});

test.serial('SIGTERM and --timeout while waiting end within a few seconds even when Redis has gone away', async (t) => {
  const own = await ownRedis(t, { owned: true });
  const other = await openClient(t, own.url);
  const prefix = newPrefix('cli');
  const locks = newLocks(t, other, { prefix });
  try {
    await locks.lock('gone').acquire();
    const r = fairlock(t, ['exec', 'gone', '--redis', own.url, '--prefix', prefix, '--', 'true']);
    await until(async () => (await locks.inspect('gone')).queue.length === 1, 'the exec to be queued');
    const timed = fairlock(t, ['exec', 'gone', '--redis', own.url, '--prefix', prefix, '--timeout', '2s', '--', 'true']);
    await until(async () => (await locks.inspect('gone')).queue.length === 2, 'the exec with --timeout to be queued');
    const queuedAt = Date.now();
    await own.kill();
    const t0 = Date.now();
    r.proc.kill('SIGTERM');
    const res = await r.done;
    // Either the cancel fails at once (connection reset) or fairlock gives up on it after 3 s.
    t.is(res.code, 143, res.stderr);
    t.true(Date.now() - t0 < 6_000, `exited after ${Date.now() - t0} ms: ${res.stderr}`);
    // --timeout holds too: 2 s, plus at most 3 s trying to leave the queue.
    const res2 = await timed.done;
    t.is(res2.code, 75, res2.stderr);
    t.true(Date.now() - queuedAt < 8_000, `timed out after ${Date.now() - queuedAt} ms: ${res2.stderr}`);
  } finally {
    // Bring Redis back (empty) so that this test's own instance and its subscriber close at once at
    // teardown (which closes the locks, the client and the server whatever happens).
    if (own.pid === undefined) await own.restart().catch(() => undefined);
  }
});

test.serial('SIGTERM while the command runs is passed to it; fairlock exits with its code and releases', async (t) => {
  const prefix = newPrefix('cli');
  const ready = join(dir, `${prefix}.ready`);
  const r = fairlock(t, [
    'exec', 'fwd', ...redisArgs(prefix), '--quiet', '--',
    NODE, '-e', `process.on('SIGTERM', () => process.exit(3)); require('fs').writeFileSync(${JSON.stringify(ready)}, 'x'); setInterval(() => {}, 1000)`,
  ]);
  await until(() => existsSync(ready), 'the command to start');
  r.proc.kill('SIGTERM');
  const res = await r.done;
  t.is(res.code, 3, res.stderr);
  const locks = newLocks(t, client, { prefix });
  t.is((await locks.inspect('fwd')).holder, null);
  await locks.close();
});

test.serial('a lost lease stops the command: SIGTERM, SIGKILL after the grace period, exit 76', async (t) => {
  const prefix = newPrefix('cli');
  const log = join(dir, `${prefix}.lost`);
  // The command ignores SIGTERM, so only SIGKILL can stop it.
  const r = fairlock(t, [
    'exec', 'l', ...redisArgs(prefix), '--lease', '1s', '--grace', '300ms', '--',
    NODE, '-e',
    `const fs = require('fs'); const f = ${JSON.stringify(log)};
     process.on('SIGTERM', () => fs.appendFileSync(f, 'term\\n'));
     fs.appendFileSync(f, 'pid ' + process.pid + '\\n'); setInterval(() => {}, 1000)`,
  ]);
  await until(() => existsSync(log), 'the command to start');
  // Redis forgets the holder: the next heartbeat (every lease/3) finds the lease gone.
  const inspector = newLocks(t, client, { prefix });
  const holder = (await inspector.inspect('l')).holder;
  t.truthy(holder, 'the exec holds the lock');
  t.is(await dropHolder(client, lockKeys(prefix, 'l').state, holder!.id), 1);
  await inspector.close();
  const res = await r.done;
  t.is(res.code, 76, res.stderr);
  t.regex(res.stderr, /lost the lock "l"/);
  t.regex(res.stderr, /SIGKILL/);
  const written = readFileSync(log, 'utf8');
  t.regex(written, /term/);
  const pid = Number(/pid (\d+)/.exec(written)![1]);
  t.throws(() => process.kill(pid, 0), undefined, 'the command is gone');
});

/**
 * A command for exec that appends "k token kind weight mode" to file `f`, then waits (polling, at
 * most 30 s) until the file `${f}.go.k` exists and exits 0. Whether it has started is read from `f`.
 */
const HOLD =
  "const fs=require('fs');const [f,k]=process.argv.slice(1);const e=process.env;" +
  "fs.appendFileSync(f,[k,e.FAIRLOCK_TOKEN,e.FAIRLOCK_KIND,e.FAIRLOCK_WEIGHT??'-',e.FAIRLOCK_MODE??'-'].join(' ')+'\\n');" +
  "const end=Date.now()+30000;(function w(){if(fs.existsSync(f+'.go.'+k))return;if(Date.now()>end)process.exit(9);setTimeout(w,20)})()";

/** Runs exec NAME with `flags` and the HOLD command as worker `k`; `go(k)` lets it finish. */
function holder(t: ExecutionContext, prefix: string, name: string, file: string, k: string, flags: string[]): Run {
  return fairlock(t, ['exec', name, ...redisArgs(prefix), '--quiet', ...flags, '--', NODE, '-e', HOLD, file, k], { limitMs: 60_000 });
}
const go = (file: string, k: string) => writeFileSync(`${file}.go.${k}`, '');
/** The lines HOLD commands wrote, by worker: [token, kind, weight, mode]. */
function commandsRun(file: string): Map<string, { token: number; kind: string; weight: string; mode: string }> {
  const out = new Map<string, { token: number; kind: string; weight: string; mode: string }>();
  if (!existsSync(file)) return out;
  for (const l of lines(readFileSync(file, 'utf8'))) {
    const [k, token, kind, weight, mode] = l.split(' ') as [string, string, string, string, string];
    out.set(k, { token: Number(token), kind, weight, mode });
  }
  return out;
}

test.serial('exec --permits: two commands hold a semaphore of 2 at once, a third (--weight 2) waits for both', async (t) => {
  const prefix = newPrefix('cli');
  const file = join(dir, `${prefix}.sem`);
  const locks = newLocks(t, client, { prefix });
  const a = holder(t, prefix, 'sem', file, 'a', ['--permits', '2']);
  const b = holder(t, prefix, 'sem', file, 'b', ['--permits', '2', '--weight', '1']);
  // Both commands run at the same time: each has written its line and neither may finish yet.
  await until(() => commandsRun(file).size === 2, 'both commands to run together', 30_000);
  const c = holder(t, prefix, 'sem', file, 'c', ['--permits', '2', '--weight', '2']);
  await until(async () => (await locks.inspect('sem')).queue.length === 1, 'the third exec to be queued', 30_000);
  const info = await locks.inspect('sem');
  t.is(info.kind, 'semaphore');
  t.is(info.limit, 2);
  t.is(info.available, 0);
  t.deepEqual(info.queue.map((q) => q.weight), [2]);
  // One permit comes free: not enough for the weight-2 waiter.
  go(file, 'a');
  const ra = await a.done;
  t.is(ra.code, 0, ra.stderr);
  const half = await locks.inspect('sem');
  t.is(half.holders.length, 1);
  t.is(half.queue.length, 1);
  t.false(commandsRun(file).has('c'), 'the weight-2 command waits while one permit is held');
  go(file, 'b');
  go(file, 'c');
  const [rb, rc] = await Promise.all([b.done, c.done]);
  t.is(rb.code, 0, rb.stderr);
  t.is(rc.code, 0, rc.stderr);
  const seen = commandsRun(file);
  t.deepEqual([...seen.keys()].sort(), ['a', 'b', 'c']);
  t.is([...seen.keys()][2], 'c', 'a and b ran first (in either order: they started together)');
  t.deepEqual([seen.get('a')!.kind, seen.get('a')!.weight, seen.get('a')!.mode], ['semaphore', '1', '-']);
  t.deepEqual([seen.get('c')!.kind, seen.get('c')!.weight, seen.get('c')!.mode], ['semaphore', '2', '-']);
  t.true(seen.get('c')!.token > Math.max(seen.get('a')!.token, seen.get('b')!.token), 'the waiter was granted after both');
  t.deepEqual((await locks.inspect('sem')).holders, []);
  await locks.close();
});

test.serial('exec --read / --write: two readers together, the writer alone, a later reader after the writer', async (t) => {
  const prefix = newPrefix('cli');
  const file = join(dir, `${prefix}.rw`);
  const locks = newLocks(t, client, { prefix });
  const r1 = holder(t, prefix, 'cfg', file, 'r1', ['--read']);
  const r2 = holder(t, prefix, 'cfg', file, 'r2', ['--read']);
  await until(() => commandsRun(file).size === 2, 'both readers to run together', 30_000);
  const w = holder(t, prefix, 'cfg', file, 'w', ['--write']);
  await until(async () => (await locks.inspect('cfg')).queue.length === 1, 'the writer to be queued', 30_000);
  // A reader that comes after a queued writer waits behind it.
  const r3 = holder(t, prefix, 'cfg', file, 'r3', ['--read']);
  await until(async () => (await locks.inspect('cfg')).queue.length === 2, 'the third reader to be queued', 30_000);
  t.deepEqual((await locks.inspect('cfg')).queue.map((q) => q.mode), ['write', 'read']);
  go(file, 'r1');
  t.is((await r1.done).code, 0);
  t.false(commandsRun(file).has('w'), 'the writer waits while a reader holds');
  go(file, 'r2');
  t.is((await r2.done).code, 0);
  await until(() => commandsRun(file).has('w'), 'the writer to run', 30_000);
  const during = await locks.inspect('cfg');
  t.deepEqual(during.holders.map((h) => h.mode), ['write'], 'the writer holds alone');
  t.false(commandsRun(file).has('r3'), 'the later reader waits for the writer');
  go(file, 'w');
  go(file, 'r3');
  const [rw, rr3] = await Promise.all([w.done, r3.done]);
  t.is(rw.code, 0, rw.stderr);
  t.is(rr3.code, 0, rr3.stderr);
  const seen = commandsRun(file);
  t.deepEqual([...seen.keys()].slice(0, 2).sort(), ['r1', 'r2'], 'the readers ran first (in either order)');
  t.deepEqual([...seen.keys()].slice(2), ['w', 'r3']);
  t.deepEqual([seen.get('r1')!.kind, seen.get('r1')!.weight, seen.get('r1')!.mode], ['rw', '-', 'read']);
  t.deepEqual([seen.get('w')!.kind, seen.get('w')!.weight, seen.get('w')!.mode], ['rw', '-', 'write']);
  const tok = (k: string) => seen.get(k)!.token;
  t.true(tok('w') > Math.max(tok('r1'), tok('r2')) && tok('r3') > tok('w'), 'tokens follow the grant order');
  await locks.close();
});

/**
 * Proves `exec --group` takes its turn in its group (DESIGN §7): queued behind a backlog of three in
 * another group, its command runs after one grant of that group, not after all three (order from
 * fencing tokens); and what `status` shows of groups while it waits: the groups in turn order, the
 * group of each holder and waiter, GROUPS in the listing, and `groups` in both JSON outputs.
 */
test.serial('exec --group: the command takes its turn in its group, ahead of another group\'s backlog; status shows the groups', async (t) => {
  const prefix = newPrefix('cli');
  const locks = newLocks(t, client, { prefix });
  const lock = locks.lock('deploy');
  const first = await lock.acquire({ timeoutMs: 10_000 });
  const backlog: Promise<number>[] = [];
  for (let i = 0; i < 3; i++) {
    const granted = lock.acquire({ group: 'big', timeoutMs: 60_000 }).then(async (l) => (await l.release(), l.token));
    granted.catch(() => undefined); // a failed assertion closes the locks before this is awaited
    backlog.push(granted);
    await until(async () => (await locks.inspect('deploy')).queue.length === i + 1, `backlog ${i} to be queued`);
  }
  const print = 'const e = process.env; console.log(JSON.stringify({ token: Number(e.FAIRLOCK_TOKEN), group: e.FAIRLOCK_GROUP }))';
  const exec = fairlock(t, ['exec', 'deploy', ...redisArgs(prefix), '--group', 'small', '--', NODE, '-e', print], { limitMs: 60_000 });
  await until(async () => (await locks.inspect('deploy')).queue.length === 4, 'the exec to be queued');
  const info = await locks.inspect('deploy');
  t.deepEqual(info.groups.map((g) => [g.group, g.held, g.waiting]), [['big', 0, 3], ['small', 0, 1], [undefined, 1, 0]]);

  const text = await run(t, ['status', 'deploy', ...redisArgs(prefix)]);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, new RegExp(`^holder {2}token ${first.token}  group \\(default\\)  lease left `, 'm'));
  t.regex(text.stdout, /^groups {2}3, next turn first:\n {2}"big" +holds 0 {2}waiting 3\n {2}"small" +holds 0 {2}waiting 1\n {2}\(default\) +holds 1 {2}waiting 0\n/m);
  t.regex(text.stdout, /^queue {3}4 waiting, group by group in turn order \(position inside its group\):$/m);
  t.deepEqual([...text.stdout.matchAll(/^ +(\d)\. \S+ {2}group (\S+)/gm)].map((m) => `${m[1]} ${m[2]}`), ['1 "big"', '2 "big"', '3 "big"', '1 "small"']);
  const json = JSON.parse((await run(t, ['status', 'deploy', ...redisArgs(prefix), '--json'])).stdout) as Awaited<ReturnType<FairLocks['inspect']>>;
  t.deepEqual(json.groups, [
    { group: 'big', held: 0, waiting: 3, capped: false },
    { group: 'small', held: 0, waiting: 1, capped: false },
    { held: 1, waiting: 0, capped: false }, // the default group: no group field
  ]);
  t.deepEqual(json.queue.map((q) => [q.group, q.position]), [['big', 1], ['big', 2], ['big', 3], ['small', 1]]);
  t.is(json.holder!.group, undefined, 'the default group: no group field');

  const list = await run(t, ['status', ...redisArgs(prefix)]);
  t.regex(list.stdout, /^NAME +KIND +HOLDERS +TOKEN +LEASE LEFT +QUEUE +GROUPS$/m);
  t.regex(list.stdout, new RegExp(`^deploy +lock +1 +${first.token} +\\S+ +4 +3$`, 'm'));
  const listed = JSON.parse((await run(t, ['status', ...redisArgs(prefix), '--json'])).stdout) as { locks: { name: string; queueLength: number; groups: { group?: string }[] }[] };
  t.deepEqual(listed.locks.map((l) => [l.name, l.queueLength, l.groups.map((g) => g.group ?? null)]), [['deploy', 4, ['big', 'small', null]]]);

  await first.release();
  const r = await exec.done;
  t.is(r.code, 0, r.stderr);
  const ran = JSON.parse(r.stdout) as { token: number; group: string };
  t.is(ran.group, 'small', 'FAIRLOCK_GROUP');
  t.regex(r.stderr, /holding the lock "deploy" in group "small" \(token \d+\)/);
  const big = await Promise.all(backlog);
  t.true(big[0]! < ran.token && ran.token < big[1]! && big[1]! < big[2]!, `one grant of "big", then the exec, then the rest of "big": ${big[0]} ${ran.token} ${big[1]} ${big[2]}`);
  t.deepEqual((await locks.inspect('deploy')).groups, [], 'nothing held or queued is left');
  await locks.close();
});

test.serial('a name busy as another kind or limit: exit 78 and a message that says what it is', async (t) => {
  const prefix = newPrefix('cli');
  const locks = newLocks(t, client, { prefix });
  const sem = await locks.semaphore('pool', { permits: 3 }).acquire({ timeoutMs: 10_000 });
  const lock = await locks.lock('plain').acquire({ timeoutMs: 10_000 });
  for (const [name, flags, re] of [
    ['pool', ['--permits', '2'], /"pool" is busy as a semaphore of 3 permits; this request asked for a semaphore of 2 permits/],
    ['pool', ['--permits', '2', '--timeout', '0'], /"pool" is busy as a semaphore of 3 permits/],
    ['pool', [], /"pool" is busy as a semaphore of 3 permits; this request asked for a lock/],
    ['pool', ['--permits', '3', '--per-group', '2'], /"pool" is busy as a semaphore of 3 permits; this request asked for a semaphore of 3 permits, at most 2 per group/],
    ['plain', ['--read'], /"plain" is busy as a lock; this request asked for a read-write lock/],
  ] as const) {
    const r = await run(t, ['exec', name, ...redisArgs(prefix), ...flags, '--', 'true']);
    t.is(r.code, 78, `${name} ${flags.join(' ')}: ${r.stderr}`);
    t.is(lines(r.stderr).length, 1, r.stderr);
    t.regex(r.stderr, re);
  }
  // The same permits are fine while busy.
  const same = await run(t, ['exec', 'pool', ...redisArgs(prefix), '--quiet', '--permits', '3', '--', 'true']);
  t.is(same.code, 0, same.stderr);
  await Promise.all([sem.release(), lock.release()]);
  await locks.close();
});

test.serial('status of a semaphore and of a read-write lock: kind, every holder, the queue with weights and modes', async (t) => {
  const prefix = newPrefix('cli');
  const locks = newLocks(t, client, { prefix });
  const waiters = newLocks(t, client, { prefix });
  const pool = locks.semaphore('pool', { permits: 3 });
  const big = await pool.acquire({ weight: 2, timeoutMs: 10_000 });
  const small = await pool.acquire({ timeoutMs: 10_000 });
  const semWait = waiters.semaphore('pool', { permits: 3 }).acquire({ weight: 2, timeoutMs: 60_000 });
  const rw = locks.readWrite('cfg');
  const readers = [await rw.read().acquire({ timeoutMs: 10_000 }), await rw.read().acquire({ timeoutMs: 10_000 })];
  const writeWait = waiters.readWrite('cfg').write().acquire({ timeoutMs: 60_000 });
  await until(async () => (await locks.inspect('cfg')).queue.length === 1, 'the writer to be queued');
  const readWait = waiters.readWrite('cfg').read().acquire({ timeoutMs: 60_000 });
  await until(async () => (await locks.inspect('cfg')).queue.length === 2 && (await locks.inspect('pool')).queue.length === 1, 'all waiters queued');

  const semText = await run(t, ['status', 'pool', ...redisArgs(prefix)]);
  t.is(semText.code, 0, semText.stderr);
  t.regex(semText.stdout, /^semaphore of 3 permits "pool" .*: 0 of 3 permits available$/m);
  t.regex(semText.stdout, new RegExp(`token ${big.token}  weight 2  lease left \\S+  ${big.id}`));
  t.regex(semText.stdout, new RegExp(`token ${small.token}  weight 1  lease left \\S+  ${small.id}`));
  t.regex(semText.stdout, /queue {3}1 waiting[^\n]*\n +1\. \S+  weight 2  waited /);
  const semJson = JSON.parse((await run(t, ['status', 'pool', ...redisArgs(prefix), '--json'])).stdout) as Awaited<ReturnType<FairLocks['inspect']>>;
  t.like(semJson, { kind: 'semaphore', limit: 3, available: 0 });
  t.deepEqual(semJson.holders.map((h) => [h.token, h.weight]), [[big.token, 2], [small.token, 1]].sort((x, y) => x[0]! - y[0]!));
  t.deepEqual(semJson.queue.map((q) => q.weight), [2]);

  const rwText = await run(t, ['status', 'cfg', ...redisArgs(prefix)]);
  t.is(rwText.code, 0, rwText.stderr);
  t.regex(rwText.stdout, /^read-write lock "cfg" .*: held for reading$/m);
  for (const r of readers) t.regex(rwText.stdout, new RegExp(`token ${r.token}  read  lease left \\S+  ${r.id}`));
  t.regex(rwText.stdout, /queue {3}2 waiting[^\n]*\n +1\. \S+  write  waited [^\n]*\n +2\. \S+  read  waited /);
  const rwJson = JSON.parse((await run(t, ['status', 'cfg', ...redisArgs(prefix), '--json'])).stdout) as Awaited<ReturnType<FairLocks['inspect']>>;
  t.is(rwJson.kind, 'rw');
  t.deepEqual(rwJson.holders.map((h) => h.mode), ['read', 'read']);
  t.deepEqual(rwJson.queue.map((q) => q.mode), ['write', 'read']);

  const list = await run(t, ['status', ...redisArgs(prefix), '--json']);
  t.is(list.code, 0, list.stderr);
  const listed = (JSON.parse(list.stdout) as { locks: { name: string; kind: string; limit?: number; holderCount: number; holder: { token: number } | null; queueLength: number }[] }).locks;
  t.deepEqual(
    listed.map((l) => [l.name, l.kind, l.limit, l.holderCount, l.holder?.token, l.queueLength]),
    [
      ['cfg', 'rw', undefined, 2, Math.min(...readers.map((r) => r.token)), 2],
      ['pool', 'semaphore', 3, 2, Math.min(big.token, small.token), 1],
    ],
  );
  const listText = await run(t, ['status', ...redisArgs(prefix)]);
  t.regex(listText.stdout, /^NAME +KIND +HOLDERS +TOKEN +LEASE LEFT +QUEUE$/m);
  t.regex(listText.stdout, new RegExp(`^cfg +rw +2 +${Math.min(...readers.map((r) => r.token))} +\\S+ +2$`, 'm'));
  t.regex(listText.stdout, new RegExp(`^pool +semaphore/3 +2 +${Math.min(big.token, small.token)} +\\S+ +1$`, 'm'));

  await Promise.all([big, small, ...readers].map((l) => l.release()));
  // The queued writer is granted first, then the reader behind it.
  const w = await writeWait;
  await w.release();
  await Promise.all([semWait, readWait].map(async (p) => (await p).release()));
  await Promise.all([locks.close(), waiters.close()]);
});

test.serial('status --json parses and matches inspect(); status without a name lists the lock', async (t) => {
  const prefix = newPrefix('cli');
  const name = 'st {x}';
  const { locks, lease } = await holdLock(t, prefix, name);
  const others = [newLocks(t, client, { prefix }), newLocks(t, client, { prefix })];
  const waits = others.map((l) => l.lock(name).acquire({ timeoutMs: 30_000 }));
  await until(async () => (await locks.inspect(name)).queue.length === 2, 'two waiters');
  const before = await locks.inspect(name);

  const r = await run(t, ['status', name, ...redisArgs(prefix), '--json']);
  t.is(r.code, 0, r.stderr);
  const status = JSON.parse(r.stdout) as Awaited<ReturnType<FairLocks['inspect']>> & { name: string; prefix: string };
  const after = await locks.inspect(name);
  t.is(status.name, name);
  t.is(status.prefix, prefix);
  t.is(status.holder?.id, after.holder?.id);
  t.is(status.holder?.token, lease.token);
  t.true(status.holder!.leaseLeftMs <= before.holder!.leaseLeftMs + 5_000 && status.holder!.leaseLeftMs > 0);
  t.deepEqual(
    status.queue.map((q) => [q.id, q.position]),
    after.queue.map((q) => [q.id, q.position]),
  );
  status.queue.forEach((q, i) => t.true(q.waitedMs >= before.queue[i]!.waitedMs && q.waitedMs <= after.queue[i]!.waitedMs));

  const text = await run(t, ['status', name, ...redisArgs(prefix)]);
  t.is(text.code, 0);
  t.true(text.stdout.includes(String(lease.token)));
  for (const q of after.queue) t.true(text.stdout.includes(q.id));

  const list = await run(t, ['status', ...redisArgs(prefix), '--json']);
  t.is(list.code, 0, list.stderr);
  const listed = JSON.parse(list.stdout) as { locks: { name: string; holder: { token: number } | null; queueLength: number }[] };
  t.deepEqual(listed.locks.map((l) => [l.name, l.holder?.token, l.queueLength]), [[name, lease.token, 2]]);

  await lease.release();
  // The two waiters entered the queue in either order: each releases as soon as it is granted.
  await Promise.all(waits.map(async (w) => (await w).release()));
  await Promise.all([locks, ...others].map((l) => l.close()));
  const idle = await run(t, ['status', ...redisArgs(prefix), '--json']);
  t.deepEqual((JSON.parse(idle.stdout) as { locks: unknown[] }).locks, [], 'a released lock is no longer listed');
});

test.serial('every command has --help', async (t) => {
  for (const args of [['--help'], ['exec', '--help'], ['status', '--help'], ['demo', '--help'], ['help', 'exec']]) {
    const r = await run(t, args);
    t.is(r.code, 0, args.join(' '));
    t.regex(r.stdout, /Usage: fairlock/);
    if (args.includes('exec')) {
      t.regex(r.stdout, /--permits <n>[\s\S]*--weight <w>[\s\S]*--read[\s\S]*--write/);
      t.regex(r.stdout, /\S\n\nExit codes:\n/, 'a blank line between the examples and "Exit codes:"');
      t.regex(r.stdout, /\b78 NAME is busy as another kind/);
    }
  }
});

test.serial('the demo runs its own redis-server, shows grants in queue order and exits 0', async (t) => {
  const env = { ...process.env };
  delete env.REDIS_URL;
  // With no redis-server binary (Redis from Docker), point the demo at the test server instead.
  const args = hasRedisBinary() ? ['demo'] : ['demo', '--redis', server.url];
  const startedAt = Date.now();
  const r = await run(t, args, { env, limitMs: 30_000 });
  t.is(r.code, 0, r.stdout + r.stderr);
  t.true(Date.now() - startedAt < 20_000);
  t.regex(r.stdout, /FIFO\s+ok/);
  t.regex(r.stdout, /HOLDS/);
  t.regex(r.stdout, /hand-off/);
});

test.serial('demo --permits 2: two holders at a time, grants in queue order by token, exits 0', async (t) => {
  const env = { ...process.env };
  delete env.REDIS_URL;
  const args = hasRedisBinary() ? ['demo', '--permits', '2'] : ['demo', '--permits', '2', '--redis', server.url];
  const r = await run(t, args, { env, limitMs: 30_000 });
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /semaphore "demo" of 2 permits/);
  t.regex(r.stdout, /HOLDS .*holders in Redis: w\d w\d \(2 of 2\)/);
  t.regex(r.stdout, /FIFO\s+ok/);
  t.regex(r.stdout, /permits\s+ok: never more than 2 holders at once/);
  t.regex(r.stdout, /two at a time\s+ok/);
  t.notRegex(r.stdout, /FAILED|violation/);
});

/**
 * Proves `demo --groups` shows fair share between tenants from its own output: it starts its own
 * redis-server like the plain demo, the burst tenant's backlog does not hold back the trickle
 * tenants (their last grants come before the burst's last, by token), and every check is ok.
 */
test.serial('demo --groups: a burst from one tenant does not hold back the two others; checks ok, exits 0', async (t) => {
  const env = { ...process.env };
  delete env.REDIS_URL;
  const args = hasRedisBinary() ? ['demo', '--groups'] : ['demo', '--groups', '--redis', server.url];
  const r = await run(t, args, { env, limitMs: 30_000 });
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /share the semaphore "demo-groups" of 2 permits/);
  if (hasRedisBinary()) t.regex(r.stdout, /a redis-server the demo started, pid \d+; stopped at the end/);
  t.regex(r.stdout, /^ {2}tenant a \(burst\) +8 requests at once +8 grants; \d waited/m);
  for (const c of ['b', 'c']) t.regex(r.stdout, new RegExp(`^  tenant ${c} \\(trickle\\) +3 requests, one at a time +3 grants; 3 waited, each through at most [0-2] grants? of others$`, 'm'));
  t.regex(r.stdout, /^ {2}fair share +ok: no request of b or c waited through more than [0-2] grants? of others \(at most 2: one per other tenant\), with up to 6 of a's queued/m);
  t.regex(r.stdout, /^ {2}FIFO +ok: inside each tenant/m);
  t.regex(r.stdout, /^ {2}permits +ok: never more than 2 holders at once/m);
  t.regex(r.stdout, /^ {2}groups +ok: Redis listed each of the 14 grants in its tenant's group$/m);
  t.notRegex(r.stdout, /FAILED|violation/);
  const order = /^ {2}grant order +(.+?) +\(by fencing token\)$/m.exec(r.stdout)?.[1]?.split(' ') ?? [];
  t.is(order.length, 14, r.stdout);
  t.true(order.indexOf('b3') < order.indexOf('a8') && order.indexOf('c3') < order.indexOf('a8'), `b and c done before a's burst: ${order.join(' ')}`);
});

test.serial('the demo says so and exits 69 when it has no Redis', async (t) => {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: dir }; // no redis-server on this PATH
  delete env.REDIS_URL;
  const r = await run(t, ['demo'], { env });
  t.is(r.code, 69, r.stdout + r.stderr);
  t.is(lines(r.stderr).length, 1);
  t.regex(r.stderr, /no Redis for the demo/);
});
