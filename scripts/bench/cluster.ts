/**
 * fairlock on a 3-master Redis Cluster against one redis-server (not part of `npm run bench`):
 *   npx tsx scripts/bench/cluster.ts [--names 1000] [--seconds 5] [--client redis4|ioredis5]
 *                                    [--concurrency 8] [--relay-delay 2]
 *
 * scale     2 FairLocks instances in this process (a client each), CONCURRENCY acquire -> release
 *           loops each; every iteration picks one of NAMES at random, so two loops sometimes meet
 *           on a name and one of them queues. 1 s warm-up (scripts loaded on every master, JIT
 *           warm), then SECONDS counted, on (a) one redis-server and (b) a 3-master cluster without
 *           replicas. Redis's own counters of every node (INFO commandstats and cpu, read just
 *           before and just after the counted window): script calls (evalsha + eval) and all
 *           commands (also those a script runs) per grant, and each master's share of both; the
 *           share a master should get is its share of the names (their slots), printed beside it.
 * hand-off  one name passed back and forth between two FairLocks A and B: A holds, B queues (its
 *           onQueued fired, then SETTLE ms), A calls release(), B's acquire() resolves; then B holds
 *           and A queues. Timed from the release() call to the waiter's acquire() resolving, with
 *           and without `durability: { replicas: 1, timeoutMs: 1000 }` on the waiter's acquire
 *           (alternate hand-offs, so a noisy machine weighs on both alike), on a 3+3 cluster and on
 *           a master with one replica. Each as a ratio to the PING p50 of A's client on the same
 *           master (on a cluster: routed by the name's key; interleaved with the hand-offs). On
 *           loopback, where CPU decides, and through the bench's relay (relay.ts: RELAY ms each way
 *           on every client connection, not on replication), where round trips decide.
 *
 * A wake-up that never reached its waiter shows as an acquire+release or a hand-off of >= 200 ms
 * (the heartbeat, every 1 s, found the grant instead): the "took >= 200 ms" and ">= 200 ms" columns
 * count them, and a healthy run has none.
 *
 * Prints the tables (Markdown) on stdout, then one JSON line; progress goes to stderr.
 * FAIRLOCK_MODULE=/path/to/index.ts measures a patched copy of src/ instead (as profile-handoff.ts).
 * Every loop is bounded in count and in time; every redis-server and relay is stopped by PID, also
 * on an error or Ctrl-C. On a 2-core machine (node + 3 to 6 redis-servers) absolute speed means
 * little: read the ratios (cluster vs one server, durable vs not, x PING) and the spread.
 */
import { execFileSync } from 'node:child_process';
import { createClient } from 'redis';
import type { FairLocks as FairLocksType, Lease } from '../../src/index.js';
import { startLocalRedis, type LocalRedis } from '../../src/cli/redis-server.js';
import { lockKeys } from '../../src/protocol/keys.js';
import { adminCommand, keySlot, startRedisCluster, type RedisClusterHandle, type Reply } from '../../test/helpers/cluster.js';
import { now, sleep, within } from './clock.js';
import { RedisStats, type Delta, type Snapshot } from './redis-stats.js';
import { spawnRelay, type Relay } from './relay.js';
import { dist, type Dist } from './stats.js';

const USAGE = `usage: npx tsx scripts/bench/cluster.ts [options]
  --names N         names the scale loops pick from (default 1000)
  --seconds N       counted seconds of each scale run, after a 1 s warm-up (default 5)
  --client C        redis4 (node-redis 4, default) or ioredis5
  --concurrency N   acquire -> release loops per FairLocks instance in the scale runs (default 8)
  --relay-delay MS  delay each way of the relay for the second hand-off table (default 2; 0: skip it)`;
const flags = new Map<string, string>();
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]!;
  if (a === '-h' || a === '--help') {
    console.log(USAGE);
    process.exit(0);
  }
  const m = /^--(names|seconds|client|concurrency|relay-delay)(?:=(.*))?$/.exec(a);
  if (!m) throw new Error(`unexpected argument "${a}"\n${USAGE}`);
  flags.set(m[1]!, m[2] ?? process.argv[++i] ?? '');
}
const int = (k: string, d: number, min: number, max: number) => {
  const n = Number(flags.get(k) ?? d);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${k} must be an integer from ${min} to ${max}\n${USAGE}`);
  return n;
};
const NAMES = int('names', 1_000, 1, 1_000_000);
const SECONDS = int('seconds', 5, 1, 60);
const CONCURRENCY = int('concurrency', 8, 1, 256);
const RELAY_DELAY_MS = int('relay-delay', 2, 0, 50);
const CLIENT = flags.get('client') ?? 'redis4';
if (CLIENT !== 'redis4' && CLIENT !== 'ioredis5') throw new Error(`--client must be redis4 or ioredis5, got "${CLIENT}"\n${USAGE}`);

// FAIRLOCK_MODULE=/path/to/index.(js|ts) measures another build or a patched copy of src/ (as profile-handoff.ts)
const { FairLocks, LockTimeoutError, NotReplicatedError } = (await import(process.env.FAIRLOCK_MODULE ?? '../../src/index.js')) as typeof import('../../src/index.js');
type FairLocks = FairLocksType;

const WARMUP_MS = 1_000;
/** An acquire+release (scale) or hand-off this slow was not woken: a heartbeat (1 s) found its grant. */
const SLOW_MS = 200;
const ACQUIRE_TIMEOUT_MS = 10_000;
/** After the window, how long the loops get to finish the iteration they are in before close() cancels their waits. */
const DRAIN_MS = 2_000;
/** Per loop: a bound on iterations that a fast machine will not reach in SECONDS. */
const MAX_LOOP_ITERATIONS = 1_000_000;
/** Kept samples of acquire+release per scale run (a reservoir would be overkill: the first ones). */
const MAX_SAMPLES = 200_000;
const DURABLE = { replicas: 1, timeoutMs: 1_000 };
const PREFIX = 'bench-cluster';
const HANDOFF_NAME = 'relay';
/** Hand-offs per topology (half of them durable) and the bounds of each loop. */
const HANDOFF = {
  loopback: { warmup: 20, handoffs: 400, pingsPer: 5, settleMs: 3, capMs: 6_000 },
  relay: { warmup: 4, handoffs: 100, pingsPer: 2, settleMs: 15, capMs: 6_000 },
  /** The first queue of each side subscribes its wake-up channel: give it time, so the table is the steady state. */
  firstSettleMs: 100,
};

// ---------------------------------------------------------------------------------------------
// Clients: one family per run, made the way a user would (no reconnects: a dead server fails fast)
// ---------------------------------------------------------------------------------------------

/** A connected client and a PING on the connection fairlock's scripts for the measured name use. */
interface Conn {
  raw: unknown;
  ping(): Promise<unknown>;
  close(): Promise<void>;
}

/** Real port -> the port clients are sent to (a relay in front of it); absent: the node itself. */
type Route = ReadonlyMap<number, number>;
const via = (route: Route, port: number) => route.get(port) ?? port;

interface Family {
  name: string;
  single(port: number): Promise<Conn>;
  /** `pingKey` routes the PING to the master that owns it, as the name's scripts are routed. */
  cluster(masterPorts: number[], route: Route, pingKey: string): Promise<Conn>;
}

const quietly = async (p: () => Promise<unknown>) => void (await p().catch(() => undefined));

async function nodeRedis4(): Promise<Family> {
  const { createClient, createCluster } = await import('redis');
  const socket = { reconnectStrategy: false as const };
  return {
    name: 'node-redis 4',
    async single(port) {
      const c = createClient({ url: `redis://127.0.0.1:${port}`, socket });
      c.on('error', () => undefined);
      await c.connect();
      return { raw: c, ping: () => c.ping(), close: () => quietly(() => c.quit()) };
    },
    async cluster(masterPorts, route, pingKey) {
      const c = createCluster({
        rootNodes: masterPorts.map((p) => ({ url: `redis://127.0.0.1:${via(route, p)}` })),
        defaults: { socket },
        // CLUSTER SLOTS names the nodes themselves: send the client (and its sharded subscriber,
        // a duplicate with the same options) to their relays instead.
        nodeAddressMap: (address: string) => {
          const i = address.lastIndexOf(':');
          return { host: address.slice(0, i), port: via(route, Number(address.slice(i + 1))) };
        },
      });
      c.on('error', () => undefined);
      await c.connect();
      return { raw: c, ping: () => c.sendCommand(pingKey, false, ['PING']), close: () => quietly(() => c.quit()) };
    },
  };
}

async function ioredis5(): Promise<Family> {
  const { Cluster, Redis } = await import('ioredis');
  return {
    name: 'ioredis 5',
    async single(port) {
      const c = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, retryStrategy: () => null });
      c.on('error', () => undefined);
      await c.connect();
      return { raw: c, ping: () => c.ping(), close: () => quietly(() => c.quit()) };
    },
    async cluster(masterPorts, route, pingKey) {
      const natMap = Object.fromEntries([...route].map(([real, relay]) => [`127.0.0.1:${real}`, { host: '127.0.0.1', port: relay }]));
      const c = new Cluster(
        masterPorts.map((p) => ({ host: '127.0.0.1', port: via(route, p) })),
        { lazyConnect: true, clusterRetryStrategy: () => null, natMap },
      );
      c.on('error', () => undefined);
      await c.connect();
      // ioredis sends a keyless PING to any node: take the pool's connection to the key's master,
      // the one that carries the name's scripts.
      const owner = await ownerPort(masterPorts[0]!, pingKey);
      const node = c.nodes('master').find((n) => n.options.port === via(route, owner));
      if (!node) throw new Error(`ioredis Cluster has no connection to master ${owner} (via ${via(route, owner)})`);
      return { raw: c, ping: () => node.ping(), close: () => quietly(() => c.quit()) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Processes: everything started is stopped by PID, also on an error or a signal
// ---------------------------------------------------------------------------------------------

/** Everything started, in order; each one's stop() is safe to call twice (the finally below calls them all again). */
const started: { stop(): Promise<void> }[] = [];
function track<T extends { stop(): Promise<void> }>(x: T): T {
  started.push(x);
  return x;
}
let stoppedAll = false;
const stopAll = async () => {
  await Promise.allSettled(started.map((x) => x.stop()));
  stoppedAll = true;
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stopAll().then(() => process.exit(130)));
// An exit with no chance to run async code (an uncaught error, EPIPE when stdout goes to `head`):
// SIGKILL what is still running. The cluster helper has the same hook for its own nodes.
process.once('exit', () => {
  if (stoppedAll) return;
  for (const x of started) {
    const pid = (x as { pid?: number }).pid;
    try {
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A master and a replica of it; resolves once the replica says master_link_status:up. */
async function startPrimaryWithReplica(): Promise<{ master: LocalRedis; replica: LocalRedis; stop(): Promise<void> }> {
  // Diskless full sync without the 5 s wait for more replicas (7.0's default delay).
  const master = track(await startLocalRedis({ args: ['--repl-diskless-sync-delay', '0'] }));
  let replica: LocalRedis | undefined;
  try {
    replica = track(await startLocalRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] }));
    const c = createClient({ url: replica.url, socket: { reconnectStrategy: false } });
    c.on('error', () => undefined);
    await c.connect();
    try {
      const until = Date.now() + 10_000;
      for (let i = 0; ; i++) {
        if (/master_link_status:up/.test(await c.info('replication'))) break;
        if (Date.now() > until || i > 1_000) throw new Error(`replica ${replica.port} not in sync with ${master.port} within 10 s`);
        await sleep(20);
      }
    } finally {
      await c.quit().catch(() => undefined);
    }
  } catch (err) {
    await Promise.all([replica?.stop(), master.stop()]);
    throw err;
  }
  const r = replica;
  return { master, replica: r, stop: async () => void (await Promise.all([r.stop(), master.stop()])) };
}

async function startRelays(ports: number[]): Promise<{ route: Route; stop(): Promise<void> }> {
  if (RELAY_DELAY_MS === 0) return { route: new Map(), stop: async () => undefined };
  const spawned = await Promise.allSettled(ports.map((p) => spawnRelay(`redis://127.0.0.1:${p}`, RELAY_DELAY_MS)));
  const relays: Relay[] = spawned.flatMap((r) => (r.status === 'fulfilled' ? [track(r.value)] : []));
  const failed = spawned.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(relays.map((r) => r.stop()));
    throw failed.reason;
  }
  const route = new Map(ports.map((p, i) => [p, Number(new URL(relays[i]!.url).port)]));
  return { route, stop: async () => void (await Promise.all(relays.map((r) => r.stop()))) };
}

// ---------------------------------------------------------------------------------------------
// Slots
// ---------------------------------------------------------------------------------------------

/** CLUSTER SLOTS of the node on `port` (a node the cluster helper started): slot ranges -> master port. */
async function slotRanges(port: number): Promise<{ lo: number; hi: number; port: number }[]> {
  const r = (await adminCommand(port, ['CLUSTER', 'SLOTS'])) as Reply[];
  return r.map((e) => {
    const entry = e as Reply[];
    return { lo: Number(entry[0]), hi: Number(entry[1]), port: Number((entry[2] as Reply[])[1]) };
  });
}

async function ownerPort(anyNode: number, key: string): Promise<number> {
  const slot = keySlot(key);
  const owner = (await slotRanges(anyNode)).find((x) => x.lo <= slot && slot <= x.hi)?.port;
  if (owner === undefined) throw new Error(`no master owns slot ${slot}`);
  return owner;
}

// ---------------------------------------------------------------------------------------------
// 1. Scale over many names
// ---------------------------------------------------------------------------------------------

interface MasterShare {
  port: number;
  names: number;
  /** names / NAMES: the share a master gets if every name is as busy as another. */
  nameShare: number;
  scripts: number;
  scriptShare: number;
  commands: number;
  commandShare: number;
}

interface ScaleResult {
  target: string;
  nodes: number;
  seconds: number;
  grants: number;
  grantsPerSec: number;
  /** Wall time per grant (1 / throughput), all loops together. */
  usPerGrant: number;
  /** One loop's acquire() + release(). */
  loopUs: Dist;
  /** Grants whose acquire() queued first (another loop held the name). */
  queuedShare: number;
  /** Acquire+release that took >= SLOW_MS, and on how many names. */
  slow: number;
  slowNames: number;
  /** Acquires in the window that gave up after ACQUIRE_TIMEOUT_MS (the loop goes on). */
  timedOut: number;
  scriptsPerGrant: number;
  /** Redis's time inside the scripts (commandstats usec of evalsha + eval), per grant. */
  scriptUsPerGrant: number;
  commandsPerGrant: number;
  /** used_cpu_sys + used_cpu_user of every node, per grant. */
  redisCpuUsPerGrant: number;
  byCommandPerGrant: Record<string, number>;
  masters: MasterShare[];
  /** Largest / smallest master share (1.0: even). */
  scriptSpread: number | null;
  commandSpread: number | null;
}

const scriptCalls = (d: Delta) => (d.byCommand.evalsha ?? 0) + (d.byCommand.eval ?? 0);

async function scale(target: string, connect: () => Promise<Conn>, nodeUrls: { port: number; url: string }[], ownerOf?: (key: string) => number): Promise<ScaleResult> {
  const names = Array.from({ length: NAMES }, (_, i) => `n${i}`);
  const stats = await Promise.all(nodeUrls.map((n) => RedisStats.connect(n.url)));
  const conns: Conn[] = [];
  const locks: FairLocks[] = [];
  const run = { counting: false, stop: false, grants: 0, queued: 0, timedOut: 0, samples: [] as number[], slow: new Map<string, number>() };
  try {
    for (let w = 0; w < 2; w++) {
      const c = await connect();
      conns.push(c);
      locks.push(new FairLocks(c.raw as never, { prefix: PREFIX }));
    }
    const hardStop = now() + WARMUP_MS + SECONDS * 1_000 + DRAIN_MS;
    const loop = async (l: FairLocks) => {
      for (let i = 0; i < MAX_LOOP_ITERATIONS && !run.stop && now() < hardStop; i++) {
        const name = names[Math.floor(Math.random() * names.length)]!;
        let queued = false;
        const t0 = now();
        try {
          const lease = await l.lock(name).acquire({ timeoutMs: ACQUIRE_TIMEOUT_MS, onQueued: () => void (queued = true) });
          await lease.release();
        } catch (err) {
          if (run.stop) return; // closed after the window: the waits still queued were cancelled
          if (!(err instanceof LockTimeoutError)) throw err;
          if (run.counting) run.timedOut++;
          continue;
        }
        if (!run.counting) continue;
        run.grants++;
        if (queued) run.queued++;
        const ms = now() - t0;
        if (run.samples.length < MAX_SAMPLES) run.samples.push(ms);
        if (ms >= SLOW_MS) run.slow.set(name, (run.slow.get(name) ?? 0) + 1);
      }
    };
    const loops = locks.flatMap((l) => Array.from({ length: CONCURRENCY }, () => loop(l)));
    // One failing loop stops the others at their next iteration, and the run, at once.
    const all = Promise.all(loops).finally(() => (run.stop = true));
    all.catch(() => undefined);
    const windowed = (async () => {
      await sleep(WARMUP_MS);
      const before = await Promise.all(stats.map((s) => s.snapshot()));
      run.counting = true;
      const from = now();
      await sleep(SECONDS * 1_000);
      run.counting = false;
      const seconds = (now() - from) / 1_000;
      const after = await Promise.all(stats.map((s) => s.snapshot()));
      return { before, after, seconds };
    })();
    const ended = all.then(() => Promise.reject(new Error(`${target}: the loops ended before the window did`)));
    ended.catch(() => undefined);
    const { before, after, seconds } = await Promise.race([windowed, ended]);
    run.stop = true;
    await within(all, DRAIN_MS);
    // Loops still waiting (a pile-up behind lost wake-ups can last seconds): close() cancels them.
    await Promise.all(locks.map((l) => l.close().catch(() => undefined)));
    await all;
    return summarize(target, seconds, run, nodeUrls, before, after, ownerOf && names.map((n) => ownerOf(lockKeys(PREFIX, n).state)));
  } finally {
    run.stop = true;
    await Promise.all(locks.map((l) => l.close().catch(() => undefined)));
    await Promise.all(conns.map((c) => c.close()));
    await Promise.all(stats.map((s) => s.close()));
  }
}

function summarize(
  target: string,
  seconds: number,
  run: { grants: number; queued: number; timedOut: number; samples: number[]; slow: Map<string, number> },
  nodes: { port: number }[],
  before: Snapshot[],
  after: Snapshot[],
  nameOwners: number[] | undefined,
): ScaleResult {
  const deltas = nodes.map((_, i) => RedisStats.delta(before[i]!, after[i]!));
  const g = run.grants || NaN;
  const scripts = deltas.map(scriptCalls);
  const commands = deltas.map((d) => d.commands);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const byCommand: Record<string, number> = {};
  for (const d of deltas) for (const [k, v] of Object.entries(d.byCommand)) byCommand[k] = (byCommand[k] ?? 0) + v;
  const masters: MasterShare[] = nameOwners
    ? nodes.map((n, i) => {
        const owned = nameOwners.filter((p) => p === n.port).length;
        return {
          port: n.port,
          names: owned,
          nameShare: owned / nameOwners.length,
          scripts: scripts[i]!,
          scriptShare: scripts[i]! / sum(scripts),
          commands: commands[i]!,
          commandShare: commands[i]! / sum(commands),
        };
      })
    : [];
  const spread = (xs: number[]) => (xs.length > 1 && Math.min(...xs) > 0 ? Math.max(...xs) / Math.min(...xs) : null);
  return {
    target,
    nodes: nodes.length,
    seconds,
    grants: run.grants,
    grantsPerSec: run.grants / seconds,
    usPerGrant: (seconds * 1e6) / g,
    loopUs: dist(run.samples.map((ms) => ms * 1_000)),
    queuedShare: run.queued / g,
    slow: sum([...run.slow.values()]),
    slowNames: run.slow.size,
    timedOut: run.timedOut,
    scriptsPerGrant: sum(scripts) / g,
    scriptUsPerGrant: sum(deltas.map((d) => (d.usecByCommand.evalsha ?? 0) + (d.usecByCommand.eval ?? 0))) / g,
    commandsPerGrant: sum(commands) / g,
    redisCpuUsPerGrant: (sum(deltas.map((d) => d.cpuSeconds)) * 1e6) / g,
    byCommandPerGrant: Object.fromEntries(Object.entries(byCommand).map(([k, v]) => [k, v / g]).sort((a, b) => (b[1] as number) - (a[1] as number))),
    masters,
    scriptSpread: spread(scripts),
    commandSpread: spread(commands),
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Hand-off back and forth, with and without durability
// ---------------------------------------------------------------------------------------------

interface HandoffResult {
  target: string;
  path: string;
  ping: Dist;
  plain: Dist;
  durable: Dist;
  /** Durable hand-offs that failed with NotReplicatedError (the grant was released; counted, not timed). */
  notReplicated: number;
  /** Counted hand-offs that took >= SLOW_MS (plain + durable). */
  slow: number;
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = now();
  await f();
  return now() - t0;
}

async function handoff(target: string, path: string, connect: () => Promise<Conn>, o: (typeof HANDOFF)['loopback']): Promise<HandoffResult> {
  const conns: Conn[] = [];
  const locks: FairLocks[] = [];
  const pings: number[] = [];
  const plain: number[] = [];
  const durable: number[] = [];
  let notReplicated = 0;
  try {
    for (let w = 0; w < 2; w++) {
      const c = await connect();
      conns.push(c);
      locks.push(new FairLocks(c.raw as never, { prefix: PREFIX }));
    }
    const ping = conns[0]!.ping;
    let [holder, waiter] = [locks[0]!, locks[1]!];
    let lease: Lease = await holder.lock(HANDOFF_NAME).acquire({ timeoutMs: ACQUIRE_TIMEOUT_MS });
    const until = now() + o.capMs;
    for (let i = 0; i < o.warmup + o.handoffs && now() < until; i++) {
      const counted = i >= o.warmup;
      // Alternate, so that both see the same noise; the first hand-offs also warm both paths.
      const isDurable = i % 2 === 1;
      for (let k = 0; k < o.pingsPer; k++) {
        const t = await timed(ping);
        if (counted) pings.push(t);
      }
      let onQueued!: () => void;
      const queued = new Promise<true>((r) => (onQueued = () => r(true)));
      let resolvedAt = 0;
      const waiting = waiter
        .lock(HANDOFF_NAME)
        .acquire({ timeoutMs: ACQUIRE_TIMEOUT_MS, onQueued, ...(isDurable ? { durability: DURABLE } : {}) })
        .then((l) => ((resolvedAt = now()), l));
      waiting.catch(() => undefined);
      if (!(await within(queued, 5_000))) throw new Error(`${target}: the waiter was not queued within 5 s`);
      // onQueued fires on the enqueue reply; on a cluster the name's shard channel is subscribed
      // right after it (the first time; later it stays subscribed): leave the waiter a moment.
      await sleep(i < 2 ? HANDOFF.firstSettleMs : o.settleMs);
      if (resolvedAt) throw new Error(`${target}: a waiter got the lock while another held it`);
      const t0 = now();
      const releasing = lease.release();
      let got: Lease | undefined;
      try {
        got = await within(waiting, ACQUIRE_TIMEOUT_MS);
      } catch (err) {
        if (!(err instanceof NotReplicatedError)) throw err;
        notReplicated++;
        await releasing;
        // fairlock released the unconfirmed grant: the waiter starts the next round as holder
        lease = await waiter.lock(HANDOFF_NAME).acquire({ timeoutMs: ACQUIRE_TIMEOUT_MS });
        [holder, waiter] = [waiter, holder];
        continue;
      }
      await releasing;
      if (!got) throw new Error(`${target}: a hand-off did not complete within 10 s`);
      if (counted) (isDurable ? durable : plain).push(resolvedAt - t0);
      lease = got;
      [holder, waiter] = [waiter, holder];
    }
    await lease.release();
  } finally {
    await Promise.all(locks.map((l) => l.close().catch(() => undefined)));
    await Promise.all(conns.map((c) => c.close()));
  }
  const slow = [...plain, ...durable].filter((ms) => ms >= SLOW_MS).length;
  return { target, path, ping: dist(pings), plain: dist(plain), durable: dist(durable), notReplicated, slow };
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

const us = (ms: number | null | undefined) => (ms == null ? 'n/a' : ms >= 10 ? `${ms.toFixed(1)} ms` : `${(ms * 1000).toFixed(0)} us`);
const f = (x: number | null | undefined, d = 1) => (x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
const pct = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? 'n/a' : `${(x * 100).toFixed(1)}%`);
const big = (x: number) => Math.round(x).toLocaleString('en-US');
const ratio = (a: number | null, b: number | null) => (a != null && b ? a / b : null);

function table(headers: string[], rows: string[][]): string {
  const align = headers.map((_, i) => (i === 0 ? '---' : '---:'));
  return [headers, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function render(family: Family, scaleRows: ScaleResult[], handoffs: HandoffResult[], meta: Record<string, unknown>): string {
  const out: string[] = [];
  if (meta.fairlockModule) out.push(`fairlock from ${String(meta.fairlockModule)} (FAIRLOCK_MODULE), not src/.`);
  out.push(`fairlock on Redis Cluster, ${family.name}: ${meta.redis}, Node ${process.versions.node}, ${meta.cores} cores, whole run ${f(meta.runSeconds as number, 0)} s.`);
  out.push(
    'A 2-core machine shares its CPU between this process and 1 to 6 redis-servers (and relays): the absolute speeds mean little. Read the ratios: cluster against one server, durable against not, x PING, and the masters\' spread.',
  );
  out.push('');
  out.push(`**Scale: 2 FairLocks x ${CONCURRENCY} acquire -> release loops, ${NAMES.toLocaleString('en-US')} names picked at random, ${SECONDS} s counted after 1 s warm-up**`);
  out.push('');
  out.push(
    table(
      ['target', 'grants/s', 'us / grant (wall)', 'acquire+release p50 / p99 / max (one loop)', 'grants that queued', `took >= ${SLOW_MS} ms (names), timed out`, 'script calls / grant', 'Redis cmds / grant', 'script time / grant', 'Redis CPU / grant (all nodes)'],
      scaleRows.map((r) => [
        r.target,
        big(r.grantsPerSec),
        f(r.usPerGrant, 0),
        [r.loopUs.p50, r.loopUs.p99, r.loopUs.max].map((x) => us(x && x / 1000)).join(' / '),
        pct(r.queuedShare),
        `${r.slow} (${r.slowNames}), ${r.timedOut}`,
        f(r.scriptsPerGrant, 3),
        f(r.commandsPerGrant, 1),
        `${f(r.scriptUsPerGrant, 1)} us`,
        `${f(r.redisCpuUsPerGrant, 0)} us`,
      ]),
    ),
  );
  for (const r of scaleRows.filter((x) => x.masters.length)) {
    out.push('');
    out.push(`**${r.target}: each master's share of the counted window (INFO commandstats deltas)**`);
    out.push('');
    out.push(
      table(
        ['master', 'names it owns (expected share)', 'script calls', 'share', 'all commands', 'share'],
        r.masters.map((m) => [String(m.port), `${m.names} (${pct(m.nameShare)})`, big(m.scripts), pct(m.scriptShare), big(m.commands), pct(m.commandShare)]),
      ),
    );
    const names = r.masters.map((m) => m.names);
    out.push('');
    out.push(
      `Spread (max / min share): script calls ${f(r.scriptSpread, 3)}, all commands ${f(r.commandSpread, 3)}; names per master ${f(Math.max(...names) / Math.min(...names), 3)}.`,
    );
  }
  out.push('');
  out.push(
    `**Hand-off back and forth on one name (release() call -> the waiter's acquire() resolves), median; durable: the waiter's acquire() with durability { replicas: 1, timeoutMs: 1000 }; x PING: over the PING p50 of the same client to the name's master**`,
  );
  out.push('');
  out.push(
    table(
      ['target', 'path', 'PING p50', 'hand-off p50 / p99', 'x PING', 'durable hand-off p50 / p99', 'x PING', 'durable / plain', 'n (plain, durable)', `>= ${SLOW_MS} ms`, 'not replicated'],
      handoffs.map((h) => [
        h.target,
        h.path,
        us(h.ping.p50),
        `${us(h.plain.p50)} / ${us(h.plain.p99)}`,
        `${f(ratio(h.plain.p50, h.ping.p50), 2)}x`,
        `${us(h.durable.p50)} / ${us(h.durable.p99)}`,
        `${f(ratio(h.durable.p50, h.ping.p50), 2)}x`,
        `${f(ratio(h.durable.p50, h.plain.p50), 2)}x`,
        `${h.plain.n}, ${h.durable.n}`,
        String(h.slow),
        String(h.notReplicated),
      ]),
    ),
  );
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

const startedAt = now();
const family = CLIENT === 'ioredis5' ? await ioredis5() : await nodeRedis4();
const redisVersion = /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';
const scaleRows: ScaleResult[] = [];
const handoffs: HandoffResult[] = [];
const step = (what: string) => console.error(`[${f((now() - startedAt) / 1000, 1)} s] ${what}`);

try {
  // 1a. one redis-server
  step('scale: one redis-server');
  {
    const redis = track(await startLocalRedis());
    try {
      scaleRows.push(await scale('one redis-server', () => family.single(redis.port), [{ port: redis.port, url: redis.url }]));
    } finally {
      await redis.stop();
    }
  }
  // 1b. three masters, no replicas
  step('scale: 3-master cluster');
  {
    const cluster: RedisClusterHandle = track(await startRedisCluster());
    try {
      const ports = cluster.masters.map((m) => m.port);
      const ranges = await slotRanges(ports[0]!);
      const ownerOf = (key: string) => {
        const slot = keySlot(key);
        return ranges.find((x) => x.lo <= slot && slot <= x.hi)!.port;
      };
      scaleRows.push(
        await scale('3-master cluster', () => family.cluster(ports, new Map(), lockKeys(PREFIX, 'n0').state), cluster.masters.map((m) => ({ port: m.port, url: m.url })), ownerOf),
      );
    } finally {
      await cluster.stop();
    }
  }
  // 2a. 3 masters + 3 replicas
  const pingKey = lockKeys(PREFIX, HANDOFF_NAME).state;
  step('hand-off: 3+3 cluster');
  {
    const cluster = track(await startRedisCluster({ replicas: true }));
    try {
      const ports = cluster.masters.map((m) => m.port);
      handoffs.push(await handoff('3+3 cluster', 'loopback', () => family.cluster(ports, new Map(), pingKey), HANDOFF.loopback));
      if (RELAY_DELAY_MS > 0) {
        const relays = await startRelays(ports);
        try {
          handoffs.push(await handoff('3+3 cluster', `relay ${RELAY_DELAY_MS} ms`, () => family.cluster(ports, relays.route, pingKey), HANDOFF.relay));
        } finally {
          await relays.stop();
        }
      }
    } finally {
      await cluster.stop();
    }
  }
  // 2b. one master + one replica
  step('hand-off: master + replica');
  {
    const pair = await startPrimaryWithReplica();
    try {
      const port = pair.master.port;
      handoffs.push(await handoff('master + replica', 'loopback', () => family.single(port), HANDOFF.loopback));
      if (RELAY_DELAY_MS > 0) {
        const relays = await startRelays([port]);
        try {
          handoffs.push(await handoff('master + replica', `relay ${RELAY_DELAY_MS} ms`, () => family.single(via(relays.route, port)), HANDOFF.relay));
        } finally {
          await relays.stop();
        }
      }
    } finally {
      await pair.stop();
    }
  }
} finally {
  await stopAll();
}

// Hand-offs first in the order above; the tables put the cluster next to the single server.
handoffs.sort((a, b) => (a.path === b.path ? 0 : a.path === 'loopback' ? -1 : b.path === 'loopback' ? 1 : 0));
const meta = {
  client: family.name,
  ...(process.env.FAIRLOCK_MODULE ? { fairlockModule: process.env.FAIRLOCK_MODULE } : {}),
  redis: `Redis ${redisVersion}`,
  node: process.versions.node,
  cores: (await import('node:os')).cpus().length,
  names: NAMES,
  seconds: SECONDS,
  concurrency: CONCURRENCY,
  relayDelayMs: RELAY_DELAY_MS,
  durability: DURABLE,
  runSeconds: (now() - startedAt) / 1000,
};
console.log(render(family, scaleRows, handoffs, meta));
const clean = (x: unknown) => JSON.parse(JSON.stringify(x, (_, v: unknown) => (typeof v === 'number' ? Number(v.toPrecision(6)) : v)));
console.log(JSON.stringify({ bench: 'cluster', ...meta, scale: clean(scaleRows), handoff: clean(handoffs) }));
