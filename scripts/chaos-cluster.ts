/**
 * Chaos on a Redis Cluster (`npm run chaos -- --cluster`): the driver of chaos-lib.ts with its
 * workers locking through a node-redis cluster client on a 3-master + 3-replica cluster of its own
 * (test/helpers/cluster.ts), while this file's loop faults the cluster's servers, one fault at a
 * time (their kinds in shuffled rounds), bounded in count and time, never leaving the cluster without a majority of masters:
 *   kill       SIGKILL of the master of a busy name; its replica is promoted (the cluster's own
 *              failover); the old master is restarted on its port with its nodes.conf, so it
 *              rejoins as a replica of the promoted one;
 *   failover   CLUSTER FAILOVER (planned) on the replica of a busy name's master;
 *   migrate    the slot of a busy name moved, key by key (ASK/TRYAGAIN between), to another master;
 *   partition  the master of a busy name cut from every client: its TCP proxy (every node announces
 *              its proxy's port, cluster-announce-port, so clients and the replica's link go through
 *              it; the cluster bus stays direct, so no failover starts) holds bytes both ways
 *              (silent) or drops every connection and refuses new ones (reset), then heals;
 *   replica    the link of a busy name's master to its replica broken: CLIENT KILL TYPE replica on
 *              the master (it resyncs at once) or the replica paused (SIGSTOP) for a while, so WAIT
 *              (durability) cannot be answered.
 * The event log and the fenced store stay on chaos-lib's single redis-server, never faulted.
 *
 * Log lines (chaos-check.ts reads them): `cluster nodes=6 durability=D` after the kind line; for
 * fault F: `cluster <kind> F name=N` before the act, `cluster back F` once the cluster is stable
 * again, `cluster settled F` one lease + liveness period later (the fault's window ends there).
 *
 * The time from a fault to the next grant is measured by this driver's clock only: from just before
 * the fault acts, polling the event log (every 25 ms) for the first `enter` line after the fault's
 * line, on any name and on a name whose slot the faulted master served.
 */
import { adminCommand, startRedisCluster, type RedisClusterHandle } from '../test/helpers/cluster.js';
import { startProxy, type Proxy } from '../test/helpers/proxy.js';
import type { RedisClient } from '../test/helpers/redis-client.js';
import { CHAOS_DEFAULTS, runChaos, type ChaosOptions, type ChaosResult } from './chaos-lib.js';

export type ClusterFault = 'kill' | 'failover' | 'migrate' | 'partition' | 'replica';
export const CLUSTER_FAULTS: readonly ClusterFault[] = ['kill', 'failover', 'migrate', 'partition', 'replica'];

export interface ClusterChaosOptions {
  /** durability.replicas of every worker's acquires: 1 (a grant waits for WAIT to the replica) or 0. */
  durability: 0 | 1;
  faults: ClusterFault[];
  /** Mean pause between the end of one fault's window and the next fault. */
  faultEveryMs: number;
  /** Keep faulting past the run's end until every kind was injected once (at most EVERY_KIND_GRACE_MS more): the CI test's short run. */
  everyKindOnce?: boolean;
  /**
   * The workers' cluster client: node-redis 6 by default, the client README advises on a cluster
   * whose masters fail over (node-redis 4 and 5 do not re-read the topology when a master dies, and
   * node-redis 4.7's sharded subscriber once threw a TypeError out of its command queue
   * (commands-queue.js, `head.value`) after a planned failover, killing the worker: a bug inside the
   * client, out of fairlock's reach; seen once in two 2-minute group runs, never with node-redis 6).
   */
  client: 'redis4' | 'redis6';
}

/** How long past its end a run with everyKindOnce may go on faulting to see every kind once. */
const EVERY_KIND_GRACE_MS = 60_000;

export const CLUSTER_CHAOS_DEFAULTS: ClusterChaosOptions = { durability: 1, faults: [...CLUSTER_FAULTS], faultEveryMs: 1_500, client: 'redis6' };

/** One fault as the driver saw it; times by the driver's clock (null: no grant within the bound). */
export interface ClusterFaultRecord {
  kind: ClusterFault;
  id: string;
  nextGrantMs: number | null;
  nextGrantOwnMs: number | null;
  /** A fault whose act or recovery failed (the cluster stayed unstable): the run still goes on. */
  error?: string;
}

export interface ClusterChaosResult {
  result: ChaosResult;
  faults: ClusterFaultRecord[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
/** How long the driver looks for the next grant after a fault. */
const NEXT_GRANT_BOUND_MS = 30_000;

export async function runClusterChaos(partial: Partial<ChaosOptions>, c: Partial<ClusterChaosOptions> = {}): Promise<ClusterChaosResult> {
  const co = { ...CLUSTER_CHAOS_DEFAULTS, ...c };
  const o = { ...CHAOS_DEFAULTS, ...partial };
  const locks = Array.from({ length: o.locks }, (_, i) => `lock-${i}`);
  const proxies = new Map<number, Proxy>();
  let cluster: RedisClusterHandle | undefined;
  const records: ClusterFaultRecord[] = [];
  try {
    cluster = await startRedisCluster({
      replicas: true,
      announce: async (port) => {
        const p = await startProxy(port);
        proxies.set(port, p);
        return p.port;
      },
    });
    const cl = cluster;
    const nodes = [...cl.masters, ...cl.replicas];
    const rootNodes = nodes.map((n) => proxies.get(n.port)!.url);
    const result = await runChaos({
      ...partial,
      external: {
        describe: `a cluster of ${nodes.length} nodes (ports ${nodes.map((n) => `${n.port}<-${proxies.get(n.port)!.port}`).join(' ')}); durability=${co.durability}; client ${co.client}; faults: ${co.faults.join(', ')} every ~${co.faultEveryMs} ms`,
        header: [`cluster nodes=${nodes.length} durability=${co.durability}`],
        worker: { cluster: rootNodes, durability: co.durability, clusterClient: co.client },
        faults: (ctx) => faultLoop(cl, proxies, locks, co, o, ctx, records),
      },
    });
    return { result, faults: records };
  } finally {
    await cluster?.stop();
    await Promise.all([...proxies.values()].map((p) => (p.heal(), p.stop().catch(() => undefined))));
  }
}

async function masterPorts(cl: RedisClusterHandle): Promise<number[]> {
  const out: number[] = [];
  for (const n of [...cl.masters, ...cl.replicas]) {
    if (n.pid === undefined) continue;
    const r = await adminCommand(n.port, ['ROLE'], 1_000).catch(() => undefined);
    if (Array.isArray(r) && r[0] === 'master') out.push(n.port);
  }
  return out;
}

/** Polls the log from `from` for the first `enter` line (any, and on one of `own`); driver's clock from `t0`. */
async function nextGrants(admin: RedisClient, logKey: string, from: number, t0: number, own: Set<string>): Promise<{ any: number | null; own: number | null }> {
  const out = { any: null as number | null, own: null as number | null };
  let next = from;
  for (let i = 0; i < NEXT_GRANT_BOUND_MS / 25 && Date.now() - t0 < NEXT_GRANT_BOUND_MS; i++) {
    const lines = await admin.lRange(logKey, next, -1).catch(() => [] as string[]);
    next += lines.length;
    const now = Date.now() - t0;
    for (const l of lines) {
      if (!l.startsWith('enter ')) continue;
      out.any ??= now;
      if (out.own === null && own.has(l.split(' ')[3] ?? '')) out.own = now;
    }
    if (out.any !== null && out.own !== null) break;
    await sleep(25);
  }
  return out;
}

async function faultLoop(
  cl: RedisClusterHandle,
  proxies: Map<number, Proxy>,
  locks: string[],
  co: ClusterChaosOptions,
  o: ChaosOptions,
  ctx: { append: (line: string) => Promise<number>; admin: RedisClient; logKey: string; stopAt: number; pending: Promise<unknown>[] },
  records: ClusterFaultRecord[],
): Promise<Record<string, number>> {
  const counts: Record<string, number> = Object.fromEntries(co.faults.map((k) => [k, 0]));
  if (co.faults.length === 0) return counts;
  const settleMs = o.leaseMs + o.livenessMs;
  // Kinds come in shuffled rounds, so every kind is seen once in each round of faults (a short run
  // still has them all) while their order stays random.
  let round: ClusterFault[] = [];
  // Bounded in count (one fault per 500 ms at most, plus one round) and in time (stopAt; with
  // everyKindOnce, until the first round is done, at most EVERY_KIND_GRACE_MS past stopAt: on a loaded
  // machine a kill or a failover can take 10 s to settle, and a short run would otherwise miss a kind).
  const firstRoundOpen = () => co.everyKindOnce === true && co.faults.some((k) => counts[k] === 0);
  const stopAt = () => (firstRoundOpen() ? ctx.stopAt + EVERY_KIND_GRACE_MS : ctx.stopAt);
  for (let n = 1; n <= o.durationMs / 500 + co.faults.length && Date.now() < stopAt(); n++) {
    await sleep(Math.min(co.faultEveryMs * (0.5 + Math.random()), Math.max(0, stopAt() - Date.now())));
    if (Date.now() >= stopAt()) break;
    if (round.length === 0) round = [...co.faults].sort(() => Math.random() - 0.5);
    const kind = round.pop()!;
    const name = pick(locks);
    const key = `{${name}}`;
    const id = `c${n}`;
    let owner: number;
    let masters: number[];
    try {
      owner = await cl.ownerOf(key);
      masters = await masterPorts(cl);
    } catch {
      continue; // not stable enough to pick a victim: try again later
    }
    // The names the faulted master serves (the busy one among them), for the next grant "on its master".
    const own = new Set([name]);
    for (const l of locks) if ((await cl.ownerOf(`{${l}}`).catch(() => -1)) === owner) own.add(l);
    const target = pick(masters.filter((p) => p !== owner));
    const silent = Math.random() < 0.5;
    // A partition's line says how many connections its proxy carried (evidence that clients route through it).
    const detail = kind === 'partition' ? `${silent ? ' silent' : ' reset'} conns=${proxies.get(owner)?.conns.size ?? 0}` : kind === 'replica' ? (silent ? ' pause' : ' client-kill') : kind === 'migrate' ? ` to=${target}` : '';
    counts[kind]!++;
    const t0 = Date.now();
    const at = (await ctx.append(`cluster ${kind} ${id} name=${name} master=${owner}${detail}`)) - 1;
    const grants = nextGrants(ctx.admin, ctx.logKey, at + 1, t0, own);
    const record: ClusterFaultRecord = { kind, id, nextGrantMs: null, nextGrantOwnMs: null };
    records.push(record);
    try {
      if (kind === 'kill') {
        const r = await cl.killMasterOf(key);
        await ctx.append(`cluster promoted ${id} new=${r.newMasterPort} after=${r.promotedAfterMs}ms`);
        await cl.nodeAt(r.killedPort).restart();
        await cl.waitStable(20_000);
      } else if (kind === 'failover') {
        await cl.failoverFor(key);
      } else if (kind === 'migrate') {
        await cl.migrateSlot(cl.slotOf(key), target, { batch: 1, pauseBetweenBatchesMs: 20 });
        await cl.waitStable(20_000);
      } else if (kind === 'partition') {
        const proxy = proxies.get(owner)!;
        const ms = 300 + Math.random() * 2 * Math.max(o.leaseMs, o.livenessMs);
        if (silent) proxy.hold();
        else {
          proxy.refuse(ms);
          for (const c of [...proxy.conns]) (c.down.destroy(), c.up.destroy());
        }
        await sleep(ms);
        if (silent) proxy.heal();
        else proxy.refuse(0);
        await cl.waitStable(20_000);
      } else {
        const replica = await cl.replicaOf(owner);
        if (silent && replica.pid !== undefined) {
          process.kill(replica.pid, 'SIGSTOP');
          await sleep(300 + Math.random() * 1_200);
          if (replica.pid !== undefined) process.kill(replica.pid, 'SIGCONT');
        } else await adminCommand(owner, ['CLIENT', 'KILL', 'TYPE', 'replica']);
        await cl.waitStable(20_000);
      }
    } catch (err) {
      record.error = err instanceof Error ? err.message : String(err);
      await ctx.append(`cluster unstable ${id} ${record.error.replace(/\s+/g, ' ')}`);
      // Every node back up, whatever failed, before the next fault (bounded: waitStable throws).
      for (const node of [...cl.masters, ...cl.replicas]) if (node.pid === undefined) await node.restart().catch(() => undefined);
      for (const p of proxies.values()) (p.heal(), p.refuse(0));
      await cl.waitStable(20_000).catch(() => undefined);
    }
    await ctx.append(`cluster back ${id}`);
    await sleep(settleMs);
    await ctx.append(`cluster settled ${id}`);
    const g = await grants;
    [record.nextGrantMs, record.nextGrantOwnMs] = [g.any, g.own];
  }
  return counts;
}

const pct = (xs: number[], p: number): number | undefined => {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

/** The per-fault table: count, time to the next grant (any name / the faulted master's names), lost-and-reported grants. */
export function faultTable(r: ClusterChaosResult): string[] {
  const ms = (x: number | undefined) => (x === undefined ? '-' : `${x}`);
  const rows = [['fault', 'count', 'next-grant p50/max ms', 'on-its-master p50/max ms', 'lost-reported', 'failed']];
  for (const k of CLUSTER_FAULTS) {
    const fs = r.faults.filter((f) => f.kind === k);
    if (fs.length === 0 && !(k in (r.result.cluster?.lostReported ?? {}))) continue;
    const any = fs.map((f) => f.nextGrantMs).filter((x): x is number => x !== null);
    const own = fs.map((f) => f.nextGrantOwnMs).filter((x): x is number => x !== null);
    rows.push([
      k,
      String(fs.length),
      `${ms(pct(any, 0.5))}/${ms(pct(any, 1))}${any.length < fs.length ? ` (${fs.length - any.length} none)` : ''}`,
      `${ms(pct(own, 0.5))}/${ms(pct(own, 1))}${own.length < fs.length ? ` (${fs.length - own.length} none)` : ''}`,
      String(r.result.cluster?.lostReported[k] ?? 0),
      String(fs.filter((f) => f.error).length),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}
