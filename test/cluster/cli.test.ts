/**
 * The `fairlock` command with `--cluster` (the `--redis` URL a seed node) sees and locks names on every
 * master of a 3-master cluster (the names held are checked to sit on all three): status, top and exec;
 * without --cluster, or with it on a non-cluster server, it exits 64 or 69 and says why.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { createCluster } from 'redis';
import type { TopSnapshot } from '../../src/cli/top.js';
import type { FairLocks, Lease } from '../../src/index.js';
import { escapeName } from '../../src/protocol/keys.js';
import { within } from '../helpers/bounded.js';
import { CLOSE_LIMIT_MS, newLocks, openClient, ownRedis, scopeOf, settleWithin } from '../helpers/cleanup.js';
import { adminCommand, startRedisCluster, type RedisClusterHandle } from '../helpers/cluster.js';
import { whenQueued } from '../helpers/queued.js';
import { freePort, newPrefix } from '../helpers/redis.js';

const BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const NODE = process.execPath;

let cluster: RedisClusterHandle | undefined;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- node-redis 4's cluster type, used for its shape only
let client: any;
let dir: string | undefined;
test.before(async () => {
  if (!existsSync(BIN)) throw new Error('run `npm run build` first (npm test does)');
  dir = mkdtempSync(join(tmpdir(), 'fairlock-cli-cluster-'));
  cluster = await startRedisCluster();
  client = createCluster({ rootNodes: cluster.rootNodes, defaults: { socket: { reconnectStrategy: (n: number) => Math.min(50 * n, 500) } } });
  client.on('error', () => undefined);
  await within(client.connect(), 15_000, 'the test\'s cluster client to connect');
});
test.after.always(async () => {
  killAll(started);
  if (client) await settleWithin(client.disconnect(), CLOSE_LIMIT_MS);
  if (cluster) await settleWithin(cluster.stop(), CLOSE_LIMIT_MS);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** fairlock processes whose pipes are still open; each leads a process group of its own. */
const started = new Set<ChildProcess>();
function killAll(procs: Iterable<ChildProcess>): void {
  for (const p of procs) {
    if (!started.has(p) || !p.pid) continue;
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
process.once('exit', () => killAll(started)); // an ava timeout skips after.always

interface Run {
  proc: ChildProcess;
  output: () => string;
  /** Whether it has exited (a wait for its progress then fails at once, with its stderr). */
  exited: () => string | undefined;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** `node dist/cli/main.js ...args`; its group is killed after `limitMs` and when test `t` ends. */
function fairlock(t: ExecutionContext, args: string[], options: { env?: NodeJS.ProcessEnv; limitMs?: number } = {}): Run {
  const env = { ...process.env, ...options.env };
  // The tests say --cluster (or FAIRLOCK_CLUSTER) themselves; an outer FAIRLOCK_CLUSTER must not leak in.
  if (!options.env || !('FAIRLOCK_CLUSTER' in options.env)) delete env.FAIRLOCK_CLUSTER;
  const proc = spawn(NODE, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  started.add(proc);
  let stdout = '';
  let stderr = '';
  let exited: string | undefined;
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const limit = setTimeout(() => killAll([proc]), options.limitMs ?? 30_000);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    proc.once('close', (code, signal) => {
      exited = `fairlock ${args[0]} exited (${signal ?? code}): ${stderr}`;
      clearTimeout(limit);
      started.delete(proc);
      resolve({ code, signal, stdout, stderr });
    });
  });
  scopeOf(t).add(() => (killAll([proc]), done));
  return { proc, output: () => stdout, exited: () => exited, done };
}

const run = (t: ExecutionContext, args: string[], options?: { env?: NodeJS.ProcessEnv; limitMs?: number }) => fairlock(t, args, options).done;

/** Polls until `check` holds; fails after `timeoutMs`. */
async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000, runs: Run[] = []): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    const gone = runs.map((r) => r.exited()).find((e) => e !== undefined);
    if (gone) throw new Error(`${gone.trim()} while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const seed = () => cluster!.masters[1]!.url; // any node will do: not the first, to show it
const clusterArgs = (prefix: string) => ['--cluster', '--redis', seed(), '--prefix', prefix];
const masterAddress = (port: number) => `127.0.0.1:${port}`;

/**
 * Three lock names, one on each master (checked: CLUSTER SLOTS owner of each name's slot), with the
 * master port of each.
 */
async function spreadNames(base: string): Promise<{ name: string; port: number }[]> {
  const byPort = new Map<number, string>();
  for (let i = 0; i < 200 && byPort.size < 3; i++) {
    const name = `${base}-${i}`;
    const port = await cluster!.ownerOf(`{${escapeName(name)}}`);
    if (!byPort.has(port)) byPort.set(port, name);
  }
  if (byPort.size !== 3) throw new Error(`no names on all three masters: ${JSON.stringify([...byPort])}`);
  return [...byPort].map(([port, name]) => ({ name, port })).sort((a, b) => a.name.localeCompare(b.name));
}

/** Holds one lock on each master (and queues a waiter on the first name); all let go when `t` ends. */
async function holdSpread(t: ExecutionContext, prefix: string): Promise<{ locks: FairLocks; held: { name: string; port: number; lease: Lease }[] }> {
  const locks = newLocks(t, client, { prefix });
  const names = await spreadNames('tenant');
  t.deepEqual(names.map((n) => n.port).sort(), cluster!.masters.map((m) => m.port).sort(), 'one name on each of the three masters');
  const held = [];
  for (const n of names) held.push({ ...n, lease: await within(locks.lock(n.name).acquire({ timeoutMs: 10_000 }), 15_000, `lock ${n.name}`) });
  const abort = new AbortController();
  const q = whenQueued();
  const waiting = locks.lock(names[0]!.name).acquire({ signal: abort.signal, timeoutMs: 30_000, onQueued: q.onQueued }).catch(() => undefined);
  scopeOf(t).add(() => (abort.abort(), waiting)); // before locks.close (last in, first out)
  await within(q.queued, 15_000, 'the waiter to queue');
  return { locks, held };
}

// Proves the listing SCANs every master: one held name per master, each listed with its token.
test.serial('status --cluster lists the names held on all three masters, as text and as JSON', async (t) => {
  const prefix = newPrefix('clicl');
  const { held } = await holdSpread(t, prefix);
  const text = await run(t, ['status', ...clusterArgs(prefix)]);
  t.is(text.code, 0, text.stderr);
  for (const h of held) t.regex(text.stdout, new RegExp(`^${h.name} +lock +1 +${h.lease.token} `, 'm'), `${h.name} (on ${h.port}) listed:\n${text.stdout}`);
  t.regex(text.stdout, new RegExp(`^${held[0]!.name} .* 1$`, 'm'), 'the queued waiter counted');
  const json = await run(t, ['status', '--json', ...clusterArgs(prefix)]);
  t.is(json.code, 0, json.stderr);
  const out = JSON.parse(json.stdout) as { prefix: string; truncated: boolean; locks: { name: string; holder: { token: number }; queueLength: number }[] };
  t.false(out.truncated);
  t.deepEqual(
    out.locks.map((l) => [l.name, l.holder.token, l.queueLength]),
    held.map((h, i) => [h.name, h.lease.token, i === 0 ? 1 : 0]),
  );
});

// Proves status NAME reaches the master of each name (not only the seed's) and shows holder and queue.
test.serial('status --cluster NAME shows the holder and the queue of a name on any master', async (t) => {
  const prefix = newPrefix('clicl');
  const { held } = await holdSpread(t, prefix);
  for (const h of held) {
    const r = await run(t, ['status', h.name, '--json', ...clusterArgs(prefix)]);
    t.is(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { name: string; kind: string; holder: { token: number; id: string }; queue: unknown[] };
    t.is(s.name, h.name);
    t.is(s.kind, 'lock');
    t.is(s.holder.token, h.lease.token, `the holder of ${h.name} on ${h.port}`);
    t.is(s.queue.length, h === held[0] ? 1 : 0);
  }
  const text = await run(t, ['status', held[0]!.name, ...clusterArgs(prefix)]);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, new RegExp(`^holder +token ${held[0]!.lease.token} `, 'm'));
  t.regex(text.stdout, /^queue +1 waiting, next first:\n +1\. /m);
});

// Proves top --json lists every master's names with the right master (host:port from CLUSTER SLOTS).
test.serial('top --cluster --json shows every name with the master that holds it', async (t) => {
  const prefix = newPrefix('clicl');
  const { held } = await holdSpread(t, prefix);
  const r = await run(t, ['top', '--json', ...clusterArgs(prefix)]);
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as TopSnapshot & { locks: { master?: string }[] };
  t.false(s.truncated);
  t.deepEqual(
    s.locks.map((l) => [l.name, l.master, l.holders.map((h) => h.token), l.queueLength]),
    held.map((h, i) => [h.name, masterAddress(h.port), [h.lease.token], i === 0 ? 1 : 0]),
  );
  for (const l of s.locks) t.true(l.holders[0]!.heldMs !== null && l.holders[0]!.heldMs >= 0, 'held for, from its own master\'s clock');
});

// Proves the plain (piped) top prints the MASTER column with the right master per name.
test.serial('top --cluster without a terminal prints a MASTER column for every name until SIGTERM', async (t) => {
  const prefix = newPrefix('clicl');
  const { held } = await holdSpread(t, prefix);
  const top = fairlock(t, ['top', '--interval', '200ms', ...clusterArgs(prefix)], { limitMs: 20_000 });
  await until(() => (top.output().match(/^fairlock top /gm) ?? []).length >= 2, 'two snapshots', 15_000, [top]);
  top.proc.kill('SIGTERM');
  const r = await top.done;
  t.is(r.code, 0, r.stderr);
  const last = r.stdout.split(/^fairlock top /m).at(-1)!;
  t.regex(last, /^NAME +MASTER +KIND +HOLDERS +QUEUE /m);
  for (const h of held) {
    t.regex(last, new RegExp(`^${h.name} +${masterAddress(h.port).replace(/\./g, '\\.')} +lock +1 +${h === held[0] ? 1 : 0} `, 'm'), last);
  }
});

// Proves exec locks through the cluster: FIFO and mutual exclusion across two exec processes, by tokens.
test.serial('exec --cluster: two execs on a name run one at a time, in queue order (by token)', async (t) => {
  const prefix = newPrefix('clicl');
  const out = join(dir!, `${prefix}.fifo`);
  const locks = newLocks(t, client, { prefix });
  // A name on a master other than the seed's: exec must reach it through the cluster.
  const { name, port } = (await spreadNames('job')).find((n) => n.port !== cluster!.masters[1]!.port)!;
  const lease = await locks.lock(name).acquire({ timeoutMs: 10_000 });
  const script =
    "const fs=require('fs');const [f,k]=process.argv.slice(1);" +
    "fs.appendFileSync(f,k+' '+process.env.FAIRLOCK_TOKEN+' start\\n');" +
    "setTimeout(()=>fs.appendFileSync(f,k+' end\\n'),50)";
  const runs: Run[] = [];
  for (let k = 0; k < 2; k++) {
    runs.push(fairlock(t, ['exec', name, ...clusterArgs(prefix), '--quiet', '--', NODE, '-e', script, out, String(k)]));
    await until(async () => (await locks.inspect(name)).queue.length === k + 1, `exec ${k} to queue on ${port}`, 15_000, runs);
  }
  t.false(existsSync(out), 'no command ran while the lock was held');
  await lease.release();
  const results = await Promise.all(runs.map((r) => r.done));
  t.deepEqual(results.map((r) => r.code), [0, 0], results.map((r) => r.stderr).join(''));
  const written = readFileSync(out, 'utf8').trim().split('\n');
  t.deepEqual(written.map((l) => `${l.split(' ')[0]} ${l.split(' ').at(-1)}`), ['0 start', '0 end', '1 start', '1 end'], 'one at a time, queue order');
  const tokens = written.filter((l) => l.endsWith('start')).map((l) => Number(l.split(' ')[1]));
  t.true(tokens[0]! > lease.token && tokens[1]! > tokens[0]!, `tokens rise: ${lease.token} ${tokens.join(' ')}`);
  t.is((await locks.inspect(name)).holder, null, 'released');
});

// Proves the environment switch, and that a value that is neither on nor off is refused (64).
test.serial('FAIRLOCK_CLUSTER=1 turns cluster mode on like --cluster; another value is bad usage', async (t) => {
  const prefix = newPrefix('clicl');
  const { held } = await holdSpread(t, prefix);
  const r = await run(t, ['status', '--json', '--redis', seed(), '--prefix', prefix], { env: { FAIRLOCK_CLUSTER: '1' } });
  t.is(r.code, 0, r.stderr);
  t.deepEqual((JSON.parse(r.stdout) as { locks: { name: string }[] }).locks.map((l) => l.name), held.map((h) => h.name));
  const bad = await run(t, ['status', '--redis', seed(), '--prefix', prefix], { env: { FAIRLOCK_CLUSTER: 'maybe' } });
  t.is(bad.code, 64, bad.stderr);
  t.regex(bad.stderr, /^fairlock: FAIRLOCK_CLUSTER.*\n$/);
});

// Proves a cluster node without --cluster is refused before anything runs, saying to pass --cluster.
test.serial('a cluster node without --cluster: status, top and exec exit 64 and say to pass --cluster', async (t) => {
  const prefix = newPrefix('clicl');
  const node = ['--redis', seed(), '--prefix', prefix];
  for (const args of [['status', ...node], ['status', 'x', ...node], ['top', '--json', ...node], ['top', ...node], ['exec', 'x', ...node, '--', NODE, '-e', '']]) {
    const r = await run(t, args, { limitMs: 15_000 });
    t.is(r.code, 64, `${args[0]}: ${r.stderr}`);
    t.regex(r.stderr, /^fairlock: .*Redis Cluster node.*pass --cluster.*\n$/, args.join(' '));
  }
});

// Proves the fallback when INFO is refused: the MOVED reply is turned into "pass --cluster" (64).
test.serial('a cluster node that refuses INFO, without --cluster: a name on another master exits 64 and says to pass --cluster', async (t) => {
  // connect cannot ask INFO (an ACL user without +info), so the refusal comes from the MOVED reply.
  const port = cluster!.masters[1]!.port;
  await adminCommand(port, ['ACL', 'SETUSER', 'noinfo', 'on', '>pw', '~*', '&*', '+@all', '-info']);
  scopeOf(t).add(() => adminCommand(port, ['ACL', 'DELUSER', 'noinfo']));
  const prefix = newPrefix('clicl');
  const { name } = (await spreadNames('elsewhere')).find((n) => n.port !== port)!;
  const node = ['--redis', `redis://noinfo:pw@127.0.0.1:${port}`, '--prefix', prefix];
  for (const args of [['status', name, ...node], ['exec', name, ...node, '--', NODE, '-e', '']]) {
    const r = await run(t, args, { limitMs: 15_000 });
    t.is(r.code, 64, `${args[0]}: ${r.stderr}`);
    t.regex(r.stderr, /^fairlock: .*Redis Cluster node.*MOVED \d+ .*pass --cluster\n$/, args.join(' '));
    t.false(r.stderr.includes(':pw@'), 'no password in the message');
  }
});

// Proves --cluster on a plain server is refused (64), also without INFO, and an unreachable seed is 69.
test.serial('--cluster on a server that is not a cluster node exits 64; an unreachable seed exits 69', async (t) => {
  const plain = await ownRedis(t);
  const prefix = newPrefix('clicl');
  for (const cmd of [['status'], ['top', '--json'], ['exec', 'x']]) {
    const tail = cmd[0] === 'exec' ? ['--', NODE, '-e', ''] : [];
    const r = await run(t, [...cmd, '--cluster', '--redis', plain.url, '--prefix', prefix, ...tail], { limitMs: 15_000 });
    t.is(r.code, 64, `${cmd[0]}: ${r.stderr}`);
    t.regex(r.stderr, /^fairlock: --cluster: .*not a Redis Cluster node.*\n$/, cmd.join(' '));
    const closed = `redis://127.0.0.1:${await freePort()}`;
    const u = await run(t, [...cmd, '--cluster', '--redis', closed, '--prefix', prefix, ...tail], { limitMs: 15_000 });
    t.is(u.code, 69, `${cmd[0]}: ${u.stderr}`);
    t.regex(u.stderr, /^fairlock: cannot connect to Redis.*\n$/);
  }
  // A user without +info: the cluster client's own CLUSTER SLOTS refusal says it.
  const admin = await openClient(t, plain.url);
  await admin.sendCommand(['ACL', 'SETUSER', 'noinfo', 'on', '>pw', '~*', '&*', '+@all', '-info']);
  scopeOf(t).add(() => admin.sendCommand(['ACL', 'DELUSER', 'noinfo']));
  const url = new URL(plain.url);
  const r = await run(t, ['status', '--cluster', '--redis', `redis://noinfo:pw@${url.host}`, '--prefix', prefix], { limitMs: 15_000 });
  t.is(r.code, 64, r.stderr);
  t.regex(r.stderr, /^fairlock: --cluster: .*not a Redis Cluster node.*\n$/);
});

// Proves the option is documented in each command's help.
test.serial('--help of status, top and exec names --cluster', async (t) => {
  for (const cmd of ['status', 'top', 'exec']) {
    const r = await run(t, [cmd, '--help']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /--cluster/, cmd);
  }
});
