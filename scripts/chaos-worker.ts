/**
 * One chaos process (forked by chaos-lib.ts): `contenders` loops, each taking a random name of
 * `locks` (as a lock, as a semaphore of `permits` with a random weight from 1 to `maxWeight`, or
 * as a read-write lock, for reading with probability `readRatio`), in a random one of `groups`
 * groups when there are any (a semaphore's with its `perGroup` cap), writing to the fenced store at
 * the start and end of its critical section (a semaphore's holders have no store: see chaos-check.ts).
 *
 * The evidence is not sent to the driver with timestamps (clocks of two processes are never
 * compared): every step is appended, in the order this process takes it, to one Redis list, the
 * event log (format in chaos-lib.ts). A single Redis server orders all appends of all processes, so
 * a line's position in that list is a real-time order. Each append that the checker relies on is
 * awaited before the step it stands for, or issued after the fact it reports:
 *   call    before acquire() is called;
 *   queued  from onQueued, i.e. after the enqueue script ran in Redis (a quorum run adds master=i,
 *           the master it first queued on);
 *   enter   after acquire() resolved, before the critical section (with waited=<ms>: from just
 *           before acquire() to its outcome, by this process's own monotonic clock; acqerr has it
 *           too); then `signal.aborted` is read
 *           (entered=1: the lease was believed held at least until `enter` landed in the log);
 *   leave   after the critical section; then `signal.aborted` is read again and
 *   verdict carries it (held=1: since a lease only goes from held to lost, it was believed held at
 *           every moment between its `enter` and its `leave` in the log).
 * The log has a connection of its own, named `evlog-<pid>`, which the driver never kills (it kills
 * the lock connections, named `chaos-<pid>`). IPC carries only control: init, ready, stop, done,
 * and stretch (see stretchUntil).
 * A quorum run (init.masters) has one lock connection per master, through the driver's proxies, and
 * also logs `mdown P i` / `mup P i` when its quorum's masterDown / masterUp events fire (this
 * process counted master i unreachable, e.g. a command or PING not answered in commandTimeoutMs).
 */
import { createClient, createCluster } from 'redis';
import { createCluster as createCluster6 } from 'redis-v6';
import { FairLocks, type Lease, type QuorumLocks } from '../src/index.js';
import type { RedisClient } from '../test/helpers/redis-client.js';
import { fencedWrite } from '../test/helpers/fenced.js';
import type { ChaosKind } from './chaos-check.js';

export interface WorkerInit {
  op: 'init';
  url: string;
  prefix: string;
  /** The Redis list of the event log. */
  logKey: string;
  kind: ChaosKind;
  /** Permits of each semaphore (kind 'semaphore'). */
  permits: number;
  /** A semaphore acquire takes a random weight from 1 to this. */
  maxWeight: number;
  /** Probability that a read-write lock acquire is a read. */
  readRatio: number;
  /** Each acquire names one of this many groups at random (g0, g1, ...); 0: none (no group). */
  groups: number;
  /** The semaphore's perGroup cap (kind 'semaphore' with groups), or undefined for none. */
  perGroup?: number;
  options: { leaseMs: number; livenessMs: number; heartbeatMs: number };
  /**
   * A run with partitions: the lock connection's URL, through a TCP proxy of the driver's (the event
   * log and the fenced store stay on `url`, never cut), and the wake-up subscriber's, through a
   * second proxy, so that the driver can cut the subscriber alone.
   */
  lockUrl?: string;
  subscriberUrl?: string;
  locks: string[];
  contenders: number;
  holdMaxMs: number;
  acquireTimeoutMs: number;
  /**
   * A quorum run: the URLs of the N masters (each through the driver's TCP proxy), in the chain's
   * order. The worker then locks through `FairLocks.quorum` (kind 'lock' only); the event log and
   * the fenced store stay on `url`, a server the driver never faults.
   */
  masters?: string[];
  /** commandTimeoutMs of the quorum (a quorum run). */
  commandTimeoutMs?: number;
  /** restartGuard of the quorum (a quorum run; false only to show what a restart empty does without it). */
  restartGuard?: boolean;
  /** A cluster run (chaos-cluster.ts): the root nodes' URLs; the worker locks through a node-redis cluster client. */
  cluster?: string[];
  /** durability.replicas of every acquire (0: none). */
  durability?: number;
  /** A cluster run: the cluster client's family, node-redis 4 (default) or 6. */
  clusterClient?: 'redis4' | 'redis6';
}

/** IPC from a worker to the driver (control only: the evidence is in the Redis event log). */
export type WorkerMessage = { ev: 'ready' } | { ev: 'done' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ipc = (m: WorkerMessage) => process.send?.(m);
/** Log fields are separated by single spaces; a message (last field) may contain any text. */
const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

/**
 * The fenced store of a read-write lock (same layout as test/helpers/fenced.ts: the hash keeps the
 * highest token of a write, `w`, and of a read, `r`; the list `key:log` every accepted write). A
 * read is refused below the highest write's token (a later write was granted, so this read's grant
 * is over); a write below the highest write's or read's token. Reads do not order each other.
 */
const RW_WRITE = `
local t = tonumber(ARGV[1])
local w = tonumber(redis.call('HGET', KEYS[1], 'w') or '0')
local r = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
if t < w or (ARGV[3] == 'w' and t < r) then return 0 end
if ARGV[3] == 'w' then redis.call('HSET', KEYS[1], 'w', ARGV[1])
elseif t > r then redis.call('HSET', KEYS[1], 'r', ARGV[1]) end
redis.call('RPUSH', KEYS[2], ARGV[1] .. ' ' .. ARGV[2])
return 1`;

async function rwFencedWrite(client: RedisClient, key: string, token: number, value: string, mode: 'r' | 'w'): Promise<boolean> {
  const r = await client.sendCommand(['EVAL', RW_WRITE, '2', key, `${key}:log`, String(token), value, mode]);
  return Number(r) === 1;
}

let running = true;
/**
 * Until when (this process's monotonic clock) a section holds on past its random time: set by the
 * driver's `stretch` when it cuts this process while it holds, so that a cut longer than the lease
 * finds the holder still inside its section (it must learn of the loss: held=0).
 */
let stretchUntil = 0;

async function main(init: WorkerInit): Promise<void> {
  const pid = process.pid;
  const socket = { reconnectStrategy: (n: number) => Math.min(50 * n, 500) };
  // The lock connections carry a name the chaos driver finds in CLIENT LIST (the subscriber is a duplicate).
  // Each client a socket object of its own: node-redis merges its URL's host and port into the one
  // it is given, so a shared one would send every client to the last URL (not through the proxy).
  const client = createClient({ url: init.lockUrl ?? init.url, name: `chaos-${pid}`, socket: { ...socket } }) as RedisClient;
  if (init.subscriberUrl !== undefined) {
    // FairLocks makes its subscriber with client.duplicate(): this instance's duplicates go through
    // the subscriber's proxy (a socket object of their own: node-redis merges the URL's host and port
    // into the one it is given, which must not be the command connection's).
    const duplicate = client.duplicate.bind(client);
    const subscriberUrl = init.subscriberUrl;
    (client as { duplicate: unknown }).duplicate = (overrides?: object) => duplicate({ ...overrides, url: subscriberUrl, socket: { ...socket } });
  }
  // A cluster run locks through a cluster client instead (the driver faults the cluster, never `url`).
  const clusterOptions = init.cluster && { rootNodes: init.cluster.map((url) => ({ url })), defaults: { socket: { ...socket, connectTimeout: 1_000 } } };
  const cluster = clusterOptions ? (init.clusterClient === 'redis6' ? createCluster6(clusterOptions) : createCluster(clusterOptions)) : undefined;
  cluster?.on('error', () => undefined);
  const store = createClient({ url: init.url, name: `store-${pid}`, socket: { ...socket } }) as RedisClient;
  const logClient = createClient({ url: init.url, name: `evlog-${pid}`, socket: { ...socket } }) as RedisClient;
  // A quorum run: one client per master (through the driver's proxy), named like the lock connection.
  const masterClients = (init.masters ?? []).map(
    (url, i) => createClient({ url, name: `chaos-${pid}-m${i}`, socket: { ...socket, connectTimeout: 1_000 } }) as RedisClient,
  );
  for (const c of [client, store, logClient, ...masterClients]) c.on('error', () => undefined);
  await Promise.all([cluster ? cluster.connect() : client.connect(), store.connect(), logClient.connect(), ...masterClients.map((c) => c.connect())]);

  // Appends go one at a time, in the order they are issued, so a retry cannot reorder them. A log
  // that cannot be written would be false evidence: then the process fails (and is reported).
  let tail: Promise<void> = Promise.resolve();
  const append = (line: string): Promise<void> => {
    const mine = tail.then(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await logClient.rPush(init.logKey, line);
          return;
        } catch (err) {
          if (attempt >= 20) {
            console.error(`chaos worker ${pid}: cannot append to the event log:`, err);
            process.exit(2);
          }
          await sleep(50);
        }
      }
    });
    tail = mine;
    return mine;
  };

  const durability = init.durability ? { durability: { replicas: init.durability } } : {};
  const locks = new FairLocks(cluster ?? client, { prefix: init.prefix, ...init.options, ...durability });
  let quorum: QuorumLocks | undefined;
  /** The master of the last `queued` event: the quorum fires it just before the acquire's onQueued. */
  let queuedOn = -1;
  if (masterClients.length > 0) {
    quorum = FairLocks.quorum(masterClients, { prefix: init.prefix, ...init.options, commandTimeoutMs: init.commandTimeoutMs, restartGuard: init.restartGuard });
    quorum.on('queued', (e) => (queuedOn = e.master));
    quorum.on('masterDown', (e) => void append(`mdown ${pid} ${e.master}`));
    quorum.on('masterUp', (e) => void append(`mup ${pid} ${e.master}`));
  }
  await append(`ready ${pid}`);
  ipc({ ev: 'ready' });

  const write = (key: string, token: number, value: string, mode: 'x' | 'r' | 'w') =>
    (mode === 'x' ? fencedWrite(store, key, token, value) : rwFencedWrite(store, key, token, value, mode)).catch(() => false);
  const loop = async (c: number) => {
    for (let seq = 0; running; seq++) {
      const lock = init.locks[Math.floor(Math.random() * init.locks.length)]!;
      const op = `${pid}-${c}-${seq}`;
      // What this acquire takes; logged on `call` and `enter` (the checker's exclusion rule needs it).
      const weight = init.kind === 'semaphore' ? 1 + Math.floor(Math.random() * init.maxWeight) : 1;
      const mode = init.kind === 'rw' ? (Math.random() < init.readRatio ? 'r' : 'w') : 'x';
      const group = init.groups > 0 ? `g${Math.floor(Math.random() * init.groups)}` : undefined;
      const extra =
        (init.kind === 'semaphore' ? ` weight=${weight}` : init.kind === 'rw' ? ` mode=${mode === 'r' ? 'read' : 'write'}` : '') +
        (group === undefined ? '' : ` group=${group}`);
      await append(`call ${pid} ${op} ${lock}${extra}`);
      let lease: Lease;
      const started = performance.now();
      const waited = () => `waited=${Math.round(performance.now() - started)}`;
      try {
        const options = {
          timeoutMs: init.acquireTimeoutMs,
          group,
          onQueued: (position: number) => void append(`queued ${pid} ${op} ${lock} ${position}${quorum ? ` master=${queuedOn}` : ''}`),
        };
        if (quorum) lease = await quorum.lock(lock).acquire(options);
        else if (init.kind === 'semaphore') lease = await locks.semaphore(lock, { permits: init.permits, perGroup: init.perGroup }).acquire({ ...options, weight });
        else if (init.kind === 'rw') lease = await (mode === 'r' ? locks.readWrite(lock).read() : locks.readWrite(lock).write()).acquire(options);
        else lease = await locks.lock(lock).acquire(options);
      } catch (err) {
        const e = err as { code?: string; message?: string };
        await append(`acqerr ${pid} ${op} ${lock} ${e.code || '?'} ${waited()} ${oneLine(e.message ?? String(err))}`);
        await sleep(20);
        continue;
      }
      const token = lease.token;
      await append(`enter ${pid} ${op} ${lock} ${token}${extra} ${waited()}`);
      const entered = !lease.signal.aborted; // read after `enter` landed
      const key = `${init.prefix}:store:${lock}`;
      const fenced = init.kind !== 'semaphore';
      if (fenced) await write(key, token, `${op} b`, mode);
      await sleep(Math.random() * init.holdMaxMs);
      // Bounded by the stretch (a cut's length): a holder cut off holds on until its lease is lost.
      while (performance.now() < stretchUntil && !lease.signal.aborted) await sleep(Math.min(20, stretchUntil - performance.now()));
      if (fenced) await write(key, token, `${op} e`, mode);
      await append(`leave ${pid} ${op} ${lock} ${token} entered=${entered ? 1 : 0}`);
      const held = !lease.signal.aborted; // read after `leave` landed
      void append(`verdict ${pid} ${op} ${lock} ${token} held=${held ? 1 : 0}`);
      try {
        await lease.release();
      } catch (err) {
        void append(`relerr ${pid} ${op} ${lock} ${token} ${(err as { code?: string }).code || '?'}`);
      }
      await sleep(Math.random() * 10);
    }
  };
  await Promise.all(Array.from({ length: init.contenders }, (_, c) => loop(c)));
  await locks.close().catch(() => undefined);
  await quorum?.close().catch(() => undefined);
  await append(`done ${pid}`);
  ipc({ ev: 'done' });
  await Promise.all([cluster ? cluster : client, store, logClient, ...masterClients].map((c) => c.quit().catch(() => undefined)));
}

process.on('message', (m: WorkerInit | { op: 'stop' } | { op: 'stretch'; ms: number }) => {
  if (m.op === 'init') {
    main(m).catch((err) => {
      console.error('chaos worker failed:', err);
      process.exit(1);
    });
  } else if (m.op === 'stop') running = false;
  else if (m.op === 'stretch') stretchUntil = performance.now() + m.ms;
});
process.on('disconnect', () => process.exit(0));
