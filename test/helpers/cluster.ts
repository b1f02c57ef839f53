/**
 * Real Redis Cluster and Sentinel topologies for the tests, started from the `redis-server` binary
 * (never a mock, only 127.0.0.1). Every process is tracked and stopped by PID: `stop()` SIGKILLs it
 * and removes its temp dir, and a `process.once('exit')` hook does the same when ava ends the worker
 * before the test's teardown ran (see test/helpers/redis.ts, which does this for single servers).
 *
 * Admin commands go through a few lines of RESP over a fresh loopback socket per command (see
 * `adminCommand`): no client state to go stale when a node is killed, no offline queue that hangs,
 * and cheap enough to poll six nodes every 50 ms on two cores. They refuse any port this module did
 * not start, so the system Redis on 6379 (or anyone else's) is never touched.
 *
 * Typical timings on 2 cores (test/cluster-helper.test.ts logs them): 3 or 3+3 nodes up in ~2.3-2.8 s
 * (a master never says cluster_state:ok in its first 2 s), planned failover ~0.1 s, kill -9 of a
 * master to promoted replica ~2.1-2.6 s with the default 1 s node timeout, Sentinel set-up ~2.7-3.1 s
 * (sentinels find each other by hello messages sent every 2 s), Sentinel failover ~2.3 s.
 *
 * On an abnormal exit the exit hook kills every process and removes this module's dirs; the empty
 * dir startLocalRedis made for each data node (its --dir is overridden by ours) is left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startLocalRedis, type LocalRedis } from '../../src/cli/redis-server.js';
import './exit-on-term.js';
import { hasShardedPubSub } from './server-features.js';

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** One redis-server process of a topology. Roles change on failover: the port identifies it. */
export interface ClusterNode {
  port: number;
  /** PID while running; undefined after kill() (until restart()) or stop(). */
  readonly pid: number | undefined;
  url: string;
  /** Signals the process (default SIGKILL) and waits until it has exited. Its dir (nodes.conf) is kept. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts a killed node again on the same port, bus port and nodes.conf, so it rejoins (as a replica
   * when it was failed over meanwhile). Call the handle's waitStable() afterwards. */
  restart(): Promise<void>;
}

export interface RedisClusterHandle {
  /** The 3 masters as started (a failover swaps roles; these arrays keep the start-up order). */
  masters: ClusterNode[];
  /** [] or 3 nodes; replicas[i] replicated masters[i] at start. */
  replicas: ClusterNode[];
  /** For node-redis `createCluster({ rootNodes })`. */
  rootNodes: { url: string }[];
  /** For ioredis `new Cluster(startupNodes)`. */
  startupNodes: { host: string; port: number }[];
  /** The node on `port` (e.g. the `killedPort` returned by killMasterOf, to restart it). */
  nodeAt(port: number): ClusterNode;
  /** The running replica whose link to the master on `masterPort` is up (the one a failover promotes). */
  replicaOf(masterPort: number): Promise<ClusterNode>;
  /** Port of the master owning the slot of `key`, as a live master sees it now (CLUSTER SLOTS). */
  ownerOf(key: string): Promise<number>;
  /** Slot of `key` (local CRC16 with hash tags, same as CLUSTER KEYSLOT). */
  slotOf(key: string): number;
  /**
   * Moves one slot with all its keys from its owner to the master on `toPort`, the way
   * `redis-cli --cluster reshard` does: SETSLOT IMPORTING/MIGRATING, then GETKEYSINSLOT + MIGRATE
   * ... KEYS in batches of `batch` keys (default 10) with `pauseBetweenBatchesMs` (default 0)
   * between them, so clients see ASK/TRYAGAIN in between, then SETSLOT NODE on the destination,
   * the source and the other masters. Resolves when every live node agrees on the new owner.
   * Throws after `timeoutMs` (default 20 s).
   */
  migrateSlot(slot: number, toPort: number, opts?: { pauseBetweenBatchesMs?: number; batch?: number; timeoutMs?: number }): Promise<void>;
  /**
   * Planned failover (CLUSTER FAILOVER on the connected replica of `key`'s master): no write is
   * lost. Resolves when the replica is master and the cluster is stable again (waitStable).
   */
  failoverFor(key: string): Promise<{ oldMasterPort: number; newMasterPort: number }>;
  /**
   * SIGKILLs the master owning `key`'s slot; resolves when its replica was promoted by the
   * cluster's automatic failover and the survivors are stable. `promotedAfterMs`: from the kill
   * to the replica's ROLE saying master; `stableAfterMs`: to every survivor agreeing, state ok.
   */
  killMasterOf(key: string): Promise<{ killedPort: number; newMasterPort: number; promotedAfterMs: number; stableAfterMs: number }>;
  /**
   * Waits until every running node says cluster_state:ok, all agree on every slot's owner, each
   * owner is running and says it is master, and every running replica's link is up.
   */
  waitStable(timeoutMs?: number): Promise<void>;
  /** SIGKILLs every process and removes the temp dirs. Safe to call twice. */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** One replica per master (needed for failover). Default false. */
  replicas?: boolean;
  /** cluster-node-timeout: how long a silent node takes to be failed. Default 1000 ms (failover ~2-3 s). */
  nodeTimeoutMs?: number;
  /**
   * The port each node announces to clients and replicas (cluster-announce-port), given the node's
   * own port before it starts: e.g. a TCP proxy's in front of it, so that every client connection
   * (and each replica's link) goes through a proxy the test can cut, while the cluster bus stays
   * direct. The handle's admin calls map announced ports back to nodes. Default: the node's own.
   */
  announce?: (port: number) => Promise<number>;
}

export interface SentinelHandle {
  masterName: string;
  /** The node that is master now, as far as this handle knows (killMaster() swaps the two). */
  readonly master: ClusterNode;
  /** The other data node (after killMaster(): the killed old master; restart() it to get a replica back). */
  readonly replica: ClusterNode;
  /** The 3 sentinels, for ioredis `new Redis({ sentinels, name: masterName })`. */
  sentinels: { host: string; port: number }[];
  /**
   * SIGKILLs the current master; resolves when every running sentinel gives the replica's address
   * for SENTINEL get-master-addr-by-name and the replica says role:master.
   */
  killMaster(): Promise<{ newMasterPort: number; promotedAfterMs: number }>;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Process and temp-dir tracking
// ---------------------------------------------------------------------------------------------

interface Tracked {
  readonly pid: number | undefined;
}

/** Processes started and not stopped yet, and our temp dirs: cleaned up synchronously on exit. */
const alive = new Set<Tracked>();
const dirs = new Set<string>();
/** Ports of processes this module started: the only ones adminCommand talks to. */
const ownPorts = new Set<number>();
/** Announced port (ClusterOptions.announce) -> the node's own port, for CLUSTER SLOTS and ROLE replies. */
const announcedToReal = new Map<number, number>();
const realPort = (port: number): number => announcedToReal.get(port) ?? port;

process.once('exit', () => {
  for (const p of alive) {
    try {
      if (p.pid !== undefined) process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `fairlock-${tag}-`));
  dirs.add(dir);
  return dir;
}

/** A node's own dir under the topology's root (startLocalRedis's dir stays empty: a later --dir wins). */
function nodeDir(root: string, i: number): string {
  const dir = join(root, `node-${i}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns without throwing; the probe throws to say what is still missing.
 * Bounded both in time and in tries; the error names `what` and the last reason.
 */
async function waitUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T>, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const maxTries = Math.ceil(timeoutMs / intervalMs) + 1;
  let last = 'never probed';
  for (let tries = 0; tries < maxTries && Date.now() < deadline; tries++) {
    try {
      return await probe();
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${last}`);
}

// ---------------------------------------------------------------------------------------------
// A minimal RESP client for admin commands
// ---------------------------------------------------------------------------------------------

export type Reply = string | number | null | Error | Reply[];

class ReplyError extends Error {}

function encode(args: (string | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** One RESP2 value from `buf` at `pos`: [value, next position], or undefined when incomplete. */
function parse(buf: Buffer, pos: number): [Reply, number] | undefined {
  if (pos >= buf.length) return undefined;
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return undefined;
  const type = buf[pos];
  const line = buf.toString('utf8', pos + 1, eol);
  switch (type) {
    case 0x2b: // +
      return [line, eol + 2];
    case 0x2d: // -
      return [new ReplyError(line), eol + 2];
    case 0x3a: // :
      return [Number(line), eol + 2];
    case 0x24: { // $
      const len = Number(line);
      if (len < 0) return [null, eol + 2];
      const end = eol + 2 + len;
      if (buf.length < end + 2) return undefined;
      return [buf.toString('utf8', eol + 2, end), end + 2];
    }
    case 0x2a: { // *
      const n = Number(line);
      if (n < 0) return [null, eol + 2];
      const items: Reply[] = [];
      let p = eol + 2;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, p);
        if (!r) return undefined;
        items.push(r[0]);
        p = r[1];
      }
      return [items, p];
    }
    default:
      throw new Error(`unexpected RESP type byte ${type}`);
  }
}

/** Sends one command to 127.0.0.1:`port` on a fresh connection; rejects on an error reply. */
export async function adminCommand(port: number, args: (string | number)[], timeoutMs = 3_000): Promise<Reply> {
  if (!ownPorts.has(port)) throw new Error(`refusing to send ${String(args[0])} to port ${port}: not a process of this helper`);
  return new Promise<Reply>((resolve, reject) => {
    const what = `${args.slice(0, 2).join(' ')} on port ${port}`;
    let buf = Buffer.alloc(0);
    let done = false;
    const socket = netConnect({ host: '127.0.0.1', port });
    const finish = (err: Error | undefined, value?: Reply) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err instanceof ReplyError ? new ReplyError(`${what}: ${err.message}`) : new Error(`${what}: ${err.message}`));
      else resolve(value ?? null);
    };
    const timer = setTimeout(() => finish(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.write(encode(args)));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        const r = parse(buf, 0);
        if (!r) return;
        if (r[0] instanceof Error) finish(r[0]);
        else finish(undefined, r[0]);
      } catch (err) {
        finish(err as Error);
      }
    });
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error('connection closed before a reply')));
  });
}

async function adminString(port: number, args: (string | number)[], timeoutMs?: number): Promise<string> {
  const r = await adminCommand(port, args, timeoutMs);
  if (typeof r !== 'string') throw new Error(`${String(args[0])} on port ${port}: expected a string reply`);
  return r;
}

/** `field:value` lines of INFO / CLUSTER INFO as a map. */
function infoFields(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

interface Role {
  role: 'master' | 'slave' | 'sentinel';
  /** For a replica: its master's port and whether the link is up ('connected'). */
  masterPort?: number;
  linkUp?: boolean;
}

async function roleOf(port: number): Promise<Role> {
  const r = await adminCommand(port, ['ROLE'], 1_000);
  if (!Array.isArray(r) || typeof r[0] !== 'string') throw new Error(`ROLE on port ${port}: unexpected reply`);
  if (r[0] === 'slave') return { role: 'slave', masterPort: realPort(Number(r[2])), linkUp: r[3] === 'connected' };
  return { role: r[0] as Role['role'] };
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/** A redis-server of ours (startLocalRedis), tracked; retried on a port clash with another process. */
async function startTracked(argsFor: () => Promise<string[]>, portFor?: () => Promise<number>): Promise<LocalRedis> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const port = portFor ? await portFor() : undefined;
      const local = await startLocalRedis({ args: await argsFor(), readyTimeoutMs: 5_000, ...(port ? { port } : {}) });
      alive.add(local);
      ownPorts.add(local.port);
      return local;
    } catch (err) {
      last = err;
      if ((err as { code?: string }).code === 'ENOENT') break;
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

function asNode(local: LocalRedis): ClusterNode {
  return {
    port: local.port,
    url: local.url,
    get pid() {
      return local.pid;
    },
    kill: (signal: NodeJS.Signals = 'SIGKILL') => local.kill(signal),
    async restart() {
      if (local.pid !== undefined) throw new Error(`node ${local.port} is still running: kill() it first`);
      await local.restart();
    },
  };
}

async function stopLocal(local: LocalRedis): Promise<void> {
  await local.kill('SIGKILL');
  await local.stop(); // removes its data dir
  alive.delete(local);
}

// ---------------------------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------------------------

const SLOTS = 16384;
/** Before Redis 7.0 a node's cluster bus listens on its port + 10000, always. */
const BUS_OFFSET = 10_000;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port below the ephemeral range whose port + 10000 is free too (bounded: 200 random tries). */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if ((await portFree(port)) && (await portFree(port + BUS_OFFSET))) return port;
  }
  throw new Error('no free port pair (port, port + 10000) for a Redis Cluster node before 7.0');
}

function crc16(buf: Uint8Array): number {
  let crc = 0;
  for (const byte of buf) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** Redis Cluster's key slot: CRC16 (XMODEM) of the key, or of its first non-empty {hash tag}. */
export function keySlot(key: string): number {
  const k = Buffer.from(key);
  const open = k.indexOf('{');
  if (open >= 0) {
    const close = k.indexOf('}', open + 1);
    if (close > open + 1) return crc16(k.subarray(open + 1, close)) % SLOTS;
  }
  return crc16(k) % SLOTS;
}

/** CLUSTER SLOTS as "lo-hi:port,..." (sorted) plus a slot -> port lookup. */
async function slotMap(port: number): Promise<{ canonical: string; owner: (slot: number) => number | undefined }> {
  const r = await adminCommand(port, ['CLUSTER', 'SLOTS'], 1_000);
  if (!Array.isArray(r)) throw new Error(`CLUSTER SLOTS on ${port}: unexpected reply`);
  const ranges = r.map((e) => {
    const entry = e as Reply[];
    const master = entry[2] as Reply[];
    return { lo: Number(entry[0]), hi: Number(entry[1]), port: realPort(Number(master[1])) };
  });
  ranges.sort((a, b) => a.lo - b.lo);
  return {
    canonical: ranges.map((x) => `${x.lo}-${x.hi}:${x.port}`).join(','),
    owner: (slot) => ranges.find((x) => x.lo <= slot && slot <= x.hi)?.port,
  };
}

export async function startRedisCluster(opts: ClusterOptions = {}): Promise<RedisClusterHandle> {
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? 1_000;
  const count = opts.replicas ? 6 : 3;
  const root = tempDir('cluster');
  const locals: LocalRedis[] = [];
  const busPorts: number[] = [];
  const busPortOption = hasShardedPubSub(); // --cluster-port came with 7.0, as sharded pub/sub did

  const stop = async () => {
    await Promise.all(locals.map(stopLocal));
    removeDir(root);
  };

  try {
    // All nodes at once: each redis-server takes ~50 ms to answer, and a master will not report
    // cluster_state:ok before it is 2 s old (CLUSTER_WRITABLE_DELAY), so the rest overlaps that.
    await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        // Before 7.0 (no --cluster-port) the bus port is always port+10000: the node's port is then
        // one below 55536 whose +10000 is free too.
        const pairPort = busPortOption
          ? opts.announce
            ? () => freePort()
            : undefined
          : async () => {
              const port = await freePortPair();
              busPorts[i] = port + BUS_OFFSET;
              return port;
            };
        let announced: number | undefined;
        const portFor = pairPort && opts.announce
          ? async () => {
              const port = await pairPort();
              announced = await opts.announce!(port);
              announcedToReal.set(announced, port);
              return port;
            }
          : pairPort;
        const local = await startTracked(async () => {
          // cluster-port: the default bus port is port+10000, above 65535 for most ephemeral ports.
          if (busPortOption) busPorts[i] = await freePort();
          return [
            // Data (a replica's synced RDB) and nodes.conf under `root`, which the exit hook removes.
            '--dir', nodeDir(root, i),
            '--cluster-enabled', 'yes',
            '--cluster-config-file', 'nodes.conf',
            ...(busPortOption ? ['--cluster-port', String(busPorts[i])] : []),
            '--cluster-node-timeout', String(nodeTimeoutMs),
            // A replica always stands for election, whatever its link's age, so a kill fails over.
            '--cluster-replica-validity-factor', '0',
            // Replicas stay with the master the test gave them.
            '--cluster-allow-replica-migration', 'no',
            // Full sync without the 5 s wait for more replicas (diskless is the 7.0 default).
            '--repl-diskless-sync-delay', '0',
            '--repl-diskless-load', 'on-empty-db',
            '--appendonly', 'no', '--save', '',
            ...(announced === undefined ? [] : ['--cluster-announce-port', String(announced), '--cluster-announce-ip', '127.0.0.1']),
          ];
        }, portFor);
        locals[i] = local;
      }),
    );

    const ids = await Promise.all(locals.map((l) => adminString(l.port, ['CLUSTER', 'MYID'])));
    // Distinct config epochs before the nodes meet, as redis-cli --cluster create does, so that
    // no epoch collision has to be resolved (which takes gossip rounds).
    await Promise.all(locals.map((l, i) => adminCommand(l.port, ['CLUSTER', 'SET-CONFIG-EPOCH', i + 1])));
    const bounds = [0, 5461, 10923, SLOTS];
    await Promise.all(
      [0, 1, 2].map((i) =>
        adminCommand(
          locals[i]!.port,
          busPortOption
            ? ['CLUSTER', 'ADDSLOTSRANGE', bounds[i]!, bounds[i + 1]! - 1]
            : ['CLUSTER', 'ADDSLOTS', ...Array.from({ length: bounds[i + 1]! - bounds[i]! }, (_, k) => bounds[i]! + k)], // ADDSLOTSRANGE is 7.0
        ),
      ),
    );
    // Node 0 meets everyone at once (with the bus port, a 7.0 argument); gossip introduces the rest.
    await Promise.all(
      locals.slice(1).map((l, j) => adminCommand(locals[0]!.port, ['CLUSTER', 'MEET', '127.0.0.1', l.port, busPorts[j + 1]!])),
    );
    if (opts.replicas) {
      // replicas[i] -> masters[i], chosen by us rather than by redis-cli's anti-affinity shuffle.
      await Promise.all(
        [3, 4, 5].map((r) =>
          waitUntil(`node ${locals[r]!.port} to replicate ${locals[r - 3]!.port}`, 10_000, () =>
            adminCommand(locals[r]!.port, ['CLUSTER', 'REPLICATE', ids[r - 3]!]),
          ),
        ),
      );
    }
    await waitUntil(`all ${count} nodes to know each other`, 10_000, async () => {
      for (const l of locals) {
        const info = infoFields(await adminString(l.port, ['CLUSTER', 'INFO']));
        if (info.get('cluster_known_nodes') !== String(count)) throw new Error(`node ${l.port} knows ${info.get('cluster_known_nodes')} nodes`);
      }
    });
  } catch (err) {
    await stop();
    throw err;
  }

  const nodes = locals.map(asNode);
  const masters = nodes.slice(0, 3);
  const replicas = nodes.slice(3);
  const running = () => nodes.filter((n) => n.pid !== undefined);

  const waitStable = async (timeoutMs = 15_000) => {
    await waitUntil('a stable cluster (cluster_state:ok, agreed slot owners, replica links up)', timeoutMs, async () => {
      const live = running();
      const livePorts = new Set(live.map((n) => n.port));
      let reference: string | undefined;
      for (const n of live) {
        const info = infoFields(await adminString(n.port, ['CLUSTER', 'INFO'], 1_000));
        if (info.get('cluster_state') !== 'ok') throw new Error(`node ${n.port}: cluster_state:${info.get('cluster_state')}`);
        const map = await slotMap(n.port);
        if (reference === undefined) reference = map.canonical;
        else if (map.canonical !== reference) throw new Error(`node ${n.port} sees slots ${map.canonical}, another node ${reference}`);
        const role = await roleOf(n.port);
        if (role.role === 'slave' && !(role.linkUp && livePorts.has(role.masterPort!))) {
          throw new Error(`replica ${n.port}: link to ${role.masterPort} not up`);
        }
      }
      for (const part of (reference ?? '').split(',')) {
        const port = Number(part.split(':')[1]);
        if (!livePorts.has(port)) throw new Error(`slots ${part} belong to a node that is not running`);
        if ((await roleOf(port)).role !== 'master') throw new Error(`owner ${port} is not master yet`);
      }
    });
  };

  /** Owner of `slot` as the first running node that answers sees it. */
  const slotOwner = async (slot: number): Promise<number> => {
    let last: unknown;
    for (const n of running()) {
      try {
        const owner = (await slotMap(n.port)).owner(slot);
        if (owner !== undefined) return owner;
        last = new Error(`node ${n.port}: slot ${slot} has no owner`);
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`no running node could say who owns slot ${slot}: ${String(last)}`);
  };

  const nodeAt = (port: number): ClusterNode => {
    const n = nodes.find((x) => x.port === port);
    if (!n) throw new Error(`no node of this cluster on port ${port}`);
    return n;
  };

  /** The running replica whose link to `masterPort` is up: the one a failover promotes. */
  const replicaOf = async (masterPort: number): Promise<ClusterNode> => {
    for (const n of running()) {
      if (n.port === masterPort) continue;
      const role = await roleOf(n.port).catch(() => undefined);
      if (role?.role === 'slave' && role.masterPort === masterPort && role.linkUp) return n;
    }
    throw new Error(`master ${masterPort} has no running, connected replica (start the cluster with { replicas: true })`);
  };

  const waitMaster = (port: number, timeoutMs: number) =>
    waitUntil(`node ${port} to say role:master`, timeoutMs, async () => {
      const r = await roleOf(port);
      if (r.role !== 'master') throw new Error(`role ${r.role}`);
    }, 20);

  try {
    await waitStable(15_000);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    masters,
    replicas,
    rootNodes: masters.map((m) => ({ url: m.url })),
    startupNodes: masters.map((m) => ({ host: '127.0.0.1', port: m.port })),
    nodeAt,
    replicaOf,
    slotOf: keySlot,
    ownerOf: (key) => slotOwner(keySlot(key)),
    waitStable,

    async migrateSlot(slot, toPort, o = {}) {
      const batch = o.batch ?? 10;
      const pause = o.pauseBetweenBatchesMs ?? 0;
      const timeoutMs = o.timeoutMs ?? 20_000;
      const deadline = Date.now() + timeoutMs;
      const fromPort = await slotOwner(slot);
      if (fromPort === toPort) return;
      nodeAt(toPort);
      if ((await roleOf(toPort)).role !== 'master') throw new Error(`migrateSlot: ${toPort} is not a master`);
      const [fromId, toId] = await Promise.all([adminString(fromPort, ['CLUSTER', 'MYID']), adminString(toPort, ['CLUSTER', 'MYID'])]);
      // Importing first, then migrating: the order redis-cli uses, so no client is ever sent by an
      // ASK to a node that would answer with MOVED back.
      await adminCommand(toPort, ['CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId]);
      await adminCommand(fromPort, ['CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId]);
      try {
        for (let round = 0; ; round++) {
          if (Date.now() > deadline) throw new Error(`migrateSlot ${slot}: keys still on ${fromPort} after ${timeoutMs} ms`);
          const keys = (await adminCommand(fromPort, ['CLUSTER', 'GETKEYSINSLOT', slot, batch])) as string[];
          if (keys.length === 0) break;
          if (round > 0 && pause > 0) await sleep(pause);
          await adminCommand(fromPort, ['MIGRATE', '127.0.0.1', toPort, '', 0, 5_000, 'KEYS', ...keys], 10_000);
        }
      } catch (err) {
        // Leave the slot where it was rather than half-migrating.
        await Promise.allSettled([fromPort, toPort].map((p) => adminCommand(p, ['CLUSTER', 'SETSLOT', slot, 'STABLE'])));
        throw err;
      }
      // Destination first (it bumps its config epoch and claims the slot), then the source, then
      // the other masters so nobody sends a stale MOVED in the meantime.
      await adminCommand(toPort, ['CLUSTER', 'SETSLOT', slot, 'NODE', toId]);
      await adminCommand(fromPort, ['CLUSTER', 'SETSLOT', slot, 'NODE', toId]);
      const others = [];
      for (const n of running()) {
        if (n.port === toPort || n.port === fromPort) continue;
        if ((await roleOf(n.port)).role === 'master') others.push(adminCommand(n.port, ['CLUSTER', 'SETSLOT', slot, 'NODE', toId]));
      }
      await Promise.all(others);
      await waitUntil(`every running node to see slot ${slot} on ${toPort}`, Math.max(1_000, deadline - Date.now()), async () => {
        for (const n of running()) {
          const owner = (await slotMap(n.port)).owner(slot);
          if (owner !== toPort) throw new Error(`node ${n.port} says slot ${slot} is on ${owner}`);
        }
      });
    },

    async failoverFor(key) {
      const oldMasterPort = await slotOwner(keySlot(key));
      const replica = await replicaOf(oldMasterPort);
      // Without FORCE: the master pauses its clients until the replica caught up, so nothing is lost.
      await adminCommand(replica.port, ['CLUSTER', 'FAILOVER']);
      await waitMaster(replica.port, 10_000);
      await waitStable(15_000);
      return { oldMasterPort, newMasterPort: replica.port };
    },

    async killMasterOf(key) {
      const killedPort = await slotOwner(keySlot(key));
      const replica = await replicaOf(killedPort);
      const started = Date.now();
      await nodeAt(killedPort).kill('SIGKILL');
      await waitMaster(replica.port, 15_000 + 10 * nodeTimeoutMs);
      const promotedAfterMs = Date.now() - started;
      await waitStable(15_000);
      return { killedPort, newMasterPort: replica.port, promotedAfterMs, stableAfterMs: Date.now() - started };
    },

    stop,
  };
}

/**
 * Waits until the replica on `replica` has every write the master on `master` made so far (their
 * replication offsets agree); both must be nodes of this module. Throws after 2 s.
 */
export async function replicaCaughtUp(master: number, replica: number): Promise<void> {
  const offset = async (port: number, field: string) =>
    Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(String(await adminCommand(port, ['INFO', 'replication'])))?.[1] ?? -1);
  for (let i = 0; i < 100; i++) {
    if ((await offset(replica, 'slave_repl_offset')) >= (await offset(master, 'master_repl_offset'))) return;
    await sleep(20);
  }
  throw new Error(`replica ${replica} did not catch up with ${master} within 2 s`);
}

// ---------------------------------------------------------------------------------------------
// Sentinel
// ---------------------------------------------------------------------------------------------

interface SentinelProcess extends Tracked {
  port: number;
  stop(): Promise<void>;
}

/**
 * `redis-server <conf> --sentinel` (the config file must come first, and must be writable, so
 * startLocalRedis cannot start it). Resolves once it answers PING.
 */
async function startSentinelProcess(dir: string, masterName: string, masterPort: number): Promise<SentinelProcess> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = join(dir, `sentinel-${port}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        'daemonize no',
        `dir ${dir}`,
        'loglevel warning',
        'sentinel resolve-hostnames no',
        `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 3000`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'),
    );
    const proc: ChildProcess = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    let exited = proc.exitCode !== null;
    const exit = new Promise<void>((resolve) => proc.once('exit', () => {
      exited = true;
      resolve();
    }));
    proc.once('error', () => undefined); // ENOENT shows as an exit too
    const tracked: SentinelProcess = {
      port,
      get pid() {
        return exited ? undefined : proc.pid;
      },
      async stop() {
        if (!exited && proc.pid !== undefined) {
          try {
            process.kill(proc.pid, 'SIGKILL');
          } catch {
            // gone
          }
          await exit;
        }
        alive.delete(tracked);
      },
    };
    alive.add(tracked);
    ownPorts.add(port);
    try {
      await Promise.race([
        waitUntil(`sentinel on ${port} to answer PING`, 5_000, () => adminCommand(port, ['PING'], 500), 20),
        exit.then(() => {
          throw new Error(`sentinel on ${port} exited at start-up`);
        }),
      ]);
      return tracked;
    } catch (err) {
      last = err;
      await tracked.stop();
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

/** SENTINEL replies are flat [field, value, ...] arrays. */
function fields(r: Reply): Map<string, string> {
  const m = new Map<string, string>();
  if (Array.isArray(r)) for (let i = 0; i + 1 < r.length; i += 2) m.set(String(r[i]), String(r[i + 1]));
  return m;
}

export async function startSentinelSetup(opts: { masterName?: string } = {}): Promise<SentinelHandle> {
  const masterName = opts.masterName ?? 'fairlock-test';
  const root = tempDir('sentinel');
  const locals: LocalRedis[] = [];
  const sentinels: SentinelProcess[] = [];
  const stop = async () => {
    await Promise.all([...locals.map(stopLocal), ...sentinels.map((s) => s.stop())]);
    removeDir(root);
  };

  try {
    const repl = ['--repl-diskless-sync-delay', '0', '--repl-diskless-load', 'on-empty-db', '--appendonly', 'no', '--save', ''];
    locals.push(await startTracked(async () => [...repl, '--dir', nodeDir(root, 0)]));
    const masterPort = locals[0]!.port;
    locals.push(await startTracked(async () => [...repl, '--dir', nodeDir(root, 1), '--replicaof', '127.0.0.1', String(masterPort)]));
    const replicaPort = locals[1]!.port;
    // The replica must be attached before the sentinels start: a sentinel's first INFO to the master
    // (sent at once) then lists it, instead of the next one 10 s later.
    await waitUntil(`replica ${replicaPort} to be in sync with ${masterPort}`, 10_000, async () => {
      const r = await roleOf(replicaPort);
      if (!r.linkUp) throw new Error('link down');
    });
    sentinels.push(...(await Promise.all([0, 1, 2].map(() => startSentinelProcess(root, masterName, masterPort)))));
    // Each sentinel must know the replica (to promote it) and the two others (quorum 2 and the
    // leader election need them); the others are learnt from hello messages, sent every 2 s.
    await waitUntil('every sentinel to know the replica and the two other sentinels', 15_000, async () => {
      for (const s of sentinels) {
        const reps = (await adminCommand(s.port, ['SENTINEL', 'REPLICAS', masterName])) as Reply[];
        const rep = reps.map(fields).find((f) => f.get('port') === String(replicaPort));
        if (!rep || /s_down|disconnected/.test(rep.get('flags') ?? '')) throw new Error(`sentinel ${s.port} does not see replica ${replicaPort} up`);
        const others = (await adminCommand(s.port, ['SENTINEL', 'SENTINELS', masterName])) as Reply[];
        if (others.length < 2) throw new Error(`sentinel ${s.port} knows ${others.length} other sentinels`);
      }
    }, 100);
  } catch (err) {
    await stop();
    throw err;
  }

  const nodes = locals.map(asNode);
  let masterIdx = 0;
  return {
    masterName,
    get master() {
      return nodes[masterIdx]!;
    },
    get replica() {
      return nodes[1 - masterIdx]!;
    },
    sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
    async killMaster() {
      const master = nodes[masterIdx]!;
      const replica = nodes[1 - masterIdx]!;
      const r = await roleOf(replica.port);
      if (r.role !== 'slave' || r.masterPort !== master.port || !r.linkUp) {
        throw new Error(`killMaster: ${replica.port} is not a connected replica of ${master.port}; restart the old master and wait first`);
      }
      const started = Date.now();
      await master.kill('SIGKILL');
      masterIdx = 1 - masterIdx;
      await waitUntil(`sentinels to report ${replica.port} as master of ${masterName}`, 30_000, async () => {
        for (const s of sentinels) {
          if (s.pid === undefined) continue;
          const addr = await adminCommand(s.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName], 1_000);
          if (!Array.isArray(addr) || Number(addr[1]) !== replica.port) throw new Error(`sentinel ${s.port} says ${JSON.stringify(addr)}`);
        }
        const role = await roleOf(replica.port);
        if (role.role !== 'master') throw new Error(`${replica.port} says role ${role.role}`);
      }, 50);
      return { newMasterPort: replica.port, promotedAfterMs: Date.now() - started };
    },
    stop,
  };
}
