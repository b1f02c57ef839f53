/**
 * The `quorum` scenario (issue 20): fairlock's quorum lock beside node-redlock's quorum mode, on the
 * same N independent redis-servers of our own, each behind a relay of its own (relay.ts: every
 * chunk delayed `delayMs` each way, so round trips decide the latencies). Everything runs in this
 * one process, so every stamp is on one clock; the servers and relays are stopped by PID.
 *
 *  - Latency, per N: uncontended acquire (the acquire() call alone; release outside the timing) and
 *    hand-off (holder's release() call -> the waiting acquire() resolving), each over the PING p50
 *    of master 0's client through its relay: the round trips. Interleaved PINGs, as latency.ts.
 *  - Contention, N = the first size: W clients (each its own connections) x K acquisitions of one
 *    lock, once per hold of `holdsMs` (each library in turn at each hold). Unfair grants: a grant
 *    whose acquire() began after some other waiter's by more than one relay round trip (so that
 *    waiter's request surely reached the masters first) while that waiter was still waiting:
 *    decided by fencing tokens where the library has them, else by this one process's `got`
 *    stamps. fairlock also: FIFO breaks (that waiter's onQueued had fired before the grantee even
 *    called acquire()). Longest wait: each from one acquire's
 *    own two stamps. Redis cost per acquisition: used_cpu_user + used_cpu_sys and commandstats
 *    deltas, summed over the masters, over the grants.
 *  - fairlock's commit rounds (DESIGN §8 rule 4: only when the held masters' tokens differ) are
 *    counted by wrapping Master.commit: more than a few means tokens differ on every grant.
 */
import { Master } from '../../src/quorum/master.js';
import { startLocalRedis, type LocalRedis } from '../../src/cli/redis-server.js';
import { fairlockQuorum, QUORUM_ADAPTERS, type QuorumAdapter } from './adapters/quorum.js';
import type { LockClient } from './adapters/types.js';
import { now, sleep, within } from './clock.js';
import { SCRIPT_CALLS } from './contention-cost.js';
import { RedisStats, type Snapshot } from './redis-stats.js';
import { spawnRelay, type Relay } from './relay.js';
import type { Target } from './results.js';
import { dist, fifoViolations, jain, overtaking, round, type Acquire, type Dist } from './stats.js';

export interface QuorumBenchOptions {
  /** Master counts to measure latency on; contention runs on the first. */
  sizes: number[];
  delayMs: number;
  uncontended: number;
  handoffs: number;
  /** How long a waiter is left waiting (after its onQueued, if it has one) before the holder releases. */
  settleMs: number;
  warmup: number;
  /** Bound on each latency loop. */
  capMs: number;
  workers: number;
  perWorker: number;
  /** How long each acquisition is held: one contention run per hold (the first is the headline). */
  holdsMs: number[];
  /** Bound on each contention run: what still waits then is abandoned and counted as waiting. */
  contentionCapMs: number;
  /** How long the masters' idle CPU is measured before each contention run, and again after it. */
  idleMs: number;
}

export interface QuorumLatency {
  lib: string;
  masters: number;
  /** ⌊N/2⌋ + 1: the target's round trips. */
  majority: number;
  ping: Dist;
  acquire: Dist;
  handoff: Dist;
  /** p50 / PING p50. */
  acquireRoundTrips: number | null;
  handoffRoundTrips: number | null;
  handoffTimedOut: boolean;
  /** fairlock: commit calls (Master.commit) per uncontended acquire / per hand-off; null for others. */
  commitsPerAcquire: number | null;
  commitsPerHandoff: number | null;
  /** Redis commands per uncontended acquire+release, summed over the masters (PINGs left out). */
  commandsPerAcquire: number | null;
  /** Requests (chunks the relay saw) per uncontended acquire+release on each master, index order (the bench's PINGs left out). */
  requestsByMaster: number[] | null;
}

export interface QuorumContention {
  lib: string;
  masters: number;
  workers: number;
  perWorker: number;
  holdMs: number;
  grants: number;
  /** Acquires still waiting when the run's bound hit (abandoned). */
  pending: number;
  elapsedMs: number;
  grantsPerSec: number;
  /** The head start (ms) a waiter needed over the grantee to count as asking first. */
  slackMs: number;
  unfair: number;
  unfairShare: number | null;
  /** fairlock: grants that passed a waiter queued (onQueued) before the grantee called acquire(). */
  fifoBreaks: number | null;
  maxWaitMs: number | null;
  jain: number | null;
  /** Redis CPU (user + sys) per acquisition, summed over the masters, µs. */
  cpuUsPerAcquisition: number | null;
  /** The masters' CPU while idle (summed), µs per second: the mean of a window just before the run and one just after. */
  idleCpuUsPerSec: number | null;
  /** cpuUsPerAcquisition less the idle rate over the run's length: what the lock's traffic cost. */
  netCpuUsPerAcquisition: number | null;
  /** Time inside the top-level script calls (EVALSHA, FCALL: commandstats usec, their commands included) per acquisition, summed over the masters, µs. */
  scriptUsPerAcquisition: number | null;
  commandsPerAcquisition: number | null;
  scriptCallsPerAcquisition: number | null;
  /** fairlock: commit calls per grant. */
  commitsPerGrant: number | null;
  /** Per master (index order): calls of each command over the run, nested script calls included. */
  commandsByMaster: Record<string, number>[];
  /** Per master: microseconds inside each command over the run (a script's include its commands). */
  usecByMaster: Record<string, number>[];
  /** Grants ordered by fencing token (else by this process's stamps). */
  byToken: boolean;
}

export interface QuorumResult {
  options: QuorumBenchOptions;
  libs: { id: string; label: string; client: string; wakeup: string }[];
  latency: QuorumLatency[];
  contention: QuorumContention[];
  targets: Target[];
  errors: string[];
}

/** Processes this scenario started and has not stopped yet: main.ts kills them by PID if it dies. */
export const quorumPids = new Set<number>();

// fairlock's commit rounds, counted where the chain makes them.
let commits = 0;
const commit = Master.prototype.commit;
Master.prototype.commit = function counted(this: Master, ...args: Parameters<Master['commit']>) {
  commits++;
  return commit.apply(this, args);
};

interface Setup {
  servers: LocalRedis[];
  relays: Relay[];
  stats: RedisStats[];
}

async function setUp(n: number, delayMs: number): Promise<Setup> {
  const s: Setup = { servers: [], relays: [], stats: [] };
  try {
    // hz 1: the servers' housekeeping (serverCron, ~2.5 ms of CPU a second each at the default hz 10 on
    // this kind of machine) is subtracted as idle CPU, and at hz 10 its noise was as large as the gap measured
    for (const p of await Promise.allSettled(Array.from({ length: n }, () => startLocalRedis({ args: ['--hz', '1'] })))) {
      if (p.status === 'rejected') throw p.reason;
      s.servers.push(p.value);
      quorumPids.add(p.value.pid!);
    }
    for (const srv of s.servers) {
      const r = await spawnRelay(srv.url, delayMs);
      s.relays.push(r);
      quorumPids.add(r.pid);
    }
    // INFO straight to each server, not through its relay
    for (const srv of s.servers) s.stats.push(await RedisStats.connect(srv.url));
    return s;
  } catch (err) {
    await tearDown(s);
    throw err;
  }
}

async function tearDown(s: Setup): Promise<void> {
  await Promise.all(s.stats.map((x) => x.close()));
  await Promise.all(
    s.relays.map(async (r) => {
      await r.stop();
      quorumPids.delete(r.pid);
    }),
  );
  await Promise.all(
    s.servers.map(async (srv) => {
      const pid = srv.pid;
      await srv.stop();
      if (pid !== undefined) quorumPids.delete(pid);
    }),
  );
}

const snapAll = (s: Setup) => Promise.all(s.stats.map((x) => x.snapshot()));

/** Summed over the masters: commands (without PING, the bench's probe of the floor), script calls, CPU seconds. */
function sumDelta(a: Snapshot[], b: Snapshot[]): { commands: number; scripts: number; scriptUs: number; cpuSeconds: number; byCommand: Record<string, number>[]; usecByCommand: Record<string, number>[] } {
  const byCommand: Record<string, number>[] = [];
  const usecByCommand: Record<string, number>[] = [];
  let scriptUs = 0;
  let commands = 0;
  let scripts = 0;
  let cpuSeconds = 0;
  a.forEach((x, i) => {
    const d = RedisStats.delta(x, b[i]!);
    commands += d.commands - (d.byCommand.ping ?? 0);
    scripts += SCRIPT_CALLS.reduce((acc, k) => acc + (d.byCommand[k] ?? 0), 0);
    scriptUs += SCRIPT_CALLS.reduce((acc, k) => acc + (d.usecByCommand[k] ?? 0), 0);
    cpuSeconds += d.cpuSeconds;
    byCommand.push(d.byCommand);
    usecByCommand.push(d.usecByCommand);
  });
  return { commands, scripts, scriptUs, cpuSeconds, byCommand, usecByCommand };
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = now();
  await f();
  return now() - t0;
}

async function measureLatency(adapter: QuorumAdapter, s: Setup, prefix: string, o: QuorumBenchOptions): Promise<QuorumLatency> {
  const urls = s.relays.map((r) => r.url);
  const n = urls.length;
  const pings: number[] = [];
  const acq: number[] = [];
  const hand: number[] = [];
  let handoffTimedOut = false;
  const a = await adapter.create(urls, prefix);
  let b: LockClient | undefined;
  const fair = adapter === fairlockQuorum;
  let commitsAcq = 0;
  let commitsHand = 0;
  let commandsPerAcquire: number | null = null;
  let chunks: number[] | null = null;
  try {
    const name = 'latency';
    for (let i = 0; i < o.warmup; i++) {
      await a.ping();
      await (await a.acquire(name)).release();
    }
    const s0 = await snapAll(s);
    const k0 = await Promise.all(s.relays.map((r) => r.counts()));
    const c0 = commits;
    let until = now() + o.capMs;
    for (let i = 0; i < o.uncontended && now() < until; i++) {
      pings.push(await timed(() => a.ping()));
      let held: Awaited<ReturnType<LockClient['acquire']>> | undefined;
      acq.push(await timed(async () => (held = await a.acquire(name))));
      await held!.release();
    }
    commitsAcq = commits - c0;
    const k1 = await Promise.all(s.relays.map((r) => r.counts()));
    // each PING is a chunk of its own on master 0's relay; what is left is the lock's requests (acquire and release)
    chunks = acq.length ? k1.map((x, i) => round((x.chunksUp - k0[i]!.chunksUp - (i === 0 ? pings.length : 0)) / acq.length, 2)!) : null;
    const d = sumDelta(s0, await snapAll(s));
    commandsPerAcquire = acq.length ? round(d.commands / acq.length, 2) : null;
    b = await adapter.create(urls, prefix);
    await (await b.acquire(name)).release();
    until = now() + o.capMs;
    for (let i = 0; i < o.handoffs && now() < until; i++) {
      pings.push(await timed(() => a.ping()));
      const held = await a.acquire(name);
      let resolvedAt = 0;
      let queued = false;
      const waiting = b.acquire(name, adapter.reportsQueued ? { onQueued: () => void (queued = true) } : undefined).then((h) => ((resolvedAt = now()), h));
      for (let k = 0; adapter.reportsQueued && !queued && k < 1_000 && now() < until; k++) await sleep(1);
      await sleep(o.settleMs);
      if (resolvedAt) throw new Error(`${adapter.id}: a waiter got the lock while another held it`);
      const c1 = commits;
      const t0 = now();
      const releasing = held.release();
      const got = await within(waiting, until - now());
      await releasing;
      if (!got) {
        handoffTimedOut = true;
        break;
      }
      commitsHand += commits - c1;
      hand.push(resolvedAt - t0);
      await got.release();
    }
  } finally {
    if (handoffTimedOut) await Promise.all([a.destroy(), b?.destroy()]);
    else await Promise.all([a.close(), b?.close()]);
  }
  const ping = dist(pings);
  const acquire = dist(acq);
  const handoff = dist(hand);
  const rt = (x: number | null) => (x != null && ping.p50 ? round(x / ping.p50, 2) : null);
  return {
    lib: adapter.id,
    masters: n,
    majority: Math.floor(n / 2) + 1,
    ping,
    acquire,
    handoff,
    acquireRoundTrips: rt(acquire.p50),
    handoffRoundTrips: rt(handoff.p50),
    handoffTimedOut,
    commitsPerAcquire: fair && acq.length ? round(commitsAcq / acq.length, 2) : null,
    commitsPerHandoff: fair && hand.length ? round(commitsHand / hand.length, 2) : null,
    commandsPerAcquire,
    requestsByMaster: chunks,
  };
}

async function runContention(adapter: QuorumAdapter, s: Setup, prefix: string, o: QuorumBenchOptions, holdMs: number): Promise<QuorumContention> {
  const urls = s.relays.map((r) => r.url);
  const name = `hot-${holdMs}`;
  const clients: LockClient[] = [];
  const acquires: Acquire[] = [];
  let stop = false;
  const waitingSince = new Map<number, { start: number; queuedAt?: number }>();
  let abandoned = false;
  try {
    for (let w = 0; w < o.workers; w++) clients.push(await adapter.create(urls, prefix));
    for (const c of clients) await (await c.acquire(name)).release(); // connections and sessions up
    // the masters' CPU while nobody asks (serverCron, idle connections): a run bound by round trips is mostly that
    const idleRate = async () => {
      const i0 = await snapAll(s);
      await sleep(o.idleMs);
      const i1 = await snapAll(s);
      return sumDelta(i0, i1).cpuSeconds / (i0.reduce((a, x, i) => a + (i1[i]!.at - x.at), 0) / i0.length / 1000);
    };
    const idleBefore = await idleRate();
    const s0 = await snapAll(s);
    const c0 = commits;
    const startAt = now();
    const loops = clients.map(async (c, w) => {
      for (let k = 0; k < o.perWorker && !stop; k++) {
        const mine: { start: number; queuedAt?: number } = { start: now() };
        waitingSince.set(w, mine);
        const h = await c.acquire(name, adapter.reportsQueued ? { onQueued: () => void (mine.queuedAt = now()) } : undefined);
        const got = now();
        waitingSince.delete(w);
        if (stop) {
          await h.release();
          return;
        }
        if (holdMs > 0) await sleep(holdMs);
        const rel = now();
        acquires.push({ proc: 0, contender: `w${w}`, start: mine.start, got, rel, ...(mine.queuedAt === undefined ? {} : { queuedAt: mine.queuedAt }), ...(h.token === undefined ? {} : { token: h.token }) });
        await h.release();
      }
    });
    const all = Promise.all(loops);
    all.catch(() => undefined); // abandoned at the bound: their rejections are expected
    const finished = await within(all, o.contentionCapMs);
    const endAt = now();
    const s1 = await snapAll(s);
    const commitCalls = commits - c0;
    // the idle rate before and after the run (connections still open), averaged: one window alone moved
    // the result by 10-20%; after a run cut short at its bound, waiters still beat, so only the window before
    const idleCpuPerSec = finished ? (idleBefore + (await idleRate())) / 2 : idleBefore;
    if (!finished) {
      stop = true;
      abandoned = true;
      for (const [w, x] of waitingSince) {
        acquires.push({ proc: 0, contender: `w${w}`, start: x.start, got: Infinity, rel: Infinity, ...(x.queuedAt === undefined ? {} : { queuedAt: x.queuedAt }), waitedMs: endAt - x.start });
      }
    }
    const grants = acquires.filter((g) => Number.isFinite(g.got));
    const pending = acquires.length - grants.length;
    const d = sumDelta(s0, s1);
    const slackMs = 2 * o.delayMs + 1;
    const ov = overtaking(acquires, slackMs, () => 0);
    const per = new Map<string, number>();
    for (let w = 0; w < o.workers; w++) per.set(`w${w}`, 0);
    for (const g of grants) per.set(g.contender, per.get(g.contender)! + 1);
    const waits = acquires.map((g) => (Number.isFinite(g.got) ? g.got - g.start : g.waitedMs!));
    const perGrant = (v: number, digits = 2) => (grants.length ? round(v / grants.length, digits) : null);
    return {
      lib: adapter.id,
      masters: urls.length,
      workers: o.workers,
      perWorker: o.perWorker,
      holdMs,
      grants: grants.length,
      pending,
      elapsedMs: round(endAt - startAt, 0)!,
      grantsPerSec: round((grants.length / (endAt - startAt)) * 1000, 1)!,
      slackMs,
      unfair: ov.overtook,
      unfairShare: round(ov.share, 4),
      fifoBreaks: fifoViolations(acquires, () => 0),
      maxWaitMs: waits.length ? round(Math.max(...waits), 1) : null,
      jain: round(jain([...per.values()]), 4),
      cpuUsPerAcquisition: perGrant(d.cpuSeconds * 1e6, 1),
      idleCpuUsPerSec: round(idleCpuPerSec * 1e6, 0),
      netCpuUsPerAcquisition: perGrant(Math.max(0, d.cpuSeconds - idleCpuPerSec * ((endAt - startAt) / 1000)) * 1e6, 1),
      scriptUsPerAcquisition: perGrant(d.scriptUs, 1),
      commandsPerAcquisition: perGrant(d.commands),
      scriptCallsPerAcquisition: perGrant(d.scripts),
      commitsPerGrant: adapter === fairlockQuorum ? perGrant(commitCalls) : null,
      commandsByMaster: d.byCommand,
      usecByMaster: d.usecByCommand,
      byToken: grants.length > 0 && grants.every((g) => g.token !== undefined),
    };
  } finally {
    stop = true;
    if (abandoned) await Promise.all(clients.map((c) => c.destroy()));
    else await Promise.all(clients.map((c) => c.close()));
  }
}

function targetsOf(r: QuorumResult): Target[] {
  const out: Target[] = [];
  const f = fairlockQuorum.id;
  for (const L of r.latency.filter((x) => x.lib === f)) {
    for (const [what, v] of [['uncontended acquire', L.acquireRoundTrips], ['hand-off', L.handoffRoundTrips]] as const) {
      out.push({
        what: `quorum N=${L.masters}: ${what}, round trips (p50 / PING p50, nearest whole)`,
        goal: `<= ${L.majority}`,
        value: v == null ? 'n/a' : `${v.toFixed(2)} (commit calls per ${what === 'hand-off' ? 'hand-off' : 'acquire'}: ${(what === 'hand-off' ? L.commitsPerHandoff : L.commitsPerAcquire) ?? 'n/a'})`,
        met: v == null ? null : Math.round(v) <= L.majority,
      });
    }
  }
  // per hold: the unfair grants, and the CPU beside the peer's run at the same hold
  for (const fc of r.contention.filter((c) => c.lib === f)) {
    const peer = r.contention.find((c) => c.lib !== f && c.holdMs === fc.holdMs);
    out.push({
      what: `quorum N=${fc.masters}, ${fc.workers}x${fc.perWorker}, hold ${fc.holdMs} ms: unfair grants`,
      goal: '0%',
      value: `${fc.unfair} of ${fc.grants} (${((fc.unfairShare ?? 0) * 100).toFixed(1)}%; FIFO breaks ${fc.fifoBreaks ?? 'n/a'}; ${fc.pending} still waiting)`,
      met: fc.grants === 0 ? null : fc.unfair === 0 && fc.pending === 0,
    });
    const a = fc.netCpuUsPerAcquisition;
    const b = peer?.netCpuUsPerAcquisition;
    out.push({
      what: `quorum N=${fc.masters}, hold ${fc.holdMs} ms: Redis CPU per acquisition, summed over the masters, less their idle CPU`,
      goal: `<= ${peer?.lib ?? 'redlock'}'s`,
      value: `${a ?? 'n/a'} us vs ${b ?? 'n/a'} us (${a != null && b ? `${(a / b).toFixed(2)}x; ` : ''}raw ${fc.cpuUsPerAcquisition ?? 'n/a'} vs ${peer?.cpuUsPerAcquisition ?? 'n/a'}; inside scripts ${fc.scriptUsPerAcquisition ?? 'n/a'} vs ${peer?.scriptUsPerAcquisition ?? 'n/a'})`,
      met: a == null || b == null ? null : a <= b,
    });
  }
  return out;
}

/**
 * Runs the scenario: per master count, its servers and relays up, each library's latency (and on
 * the first count, contention), everything stopped again. `step` reports progress.
 */
export async function runQuorum(o: QuorumBenchOptions, step: (what: string) => void): Promise<QuorumResult> {
  const r: QuorumResult = {
    options: o,
    libs: QUORUM_ADAPTERS.map((a) => ({ id: a.id, label: a.label, client: a.client, wakeup: a.wakeup })),
    latency: [],
    contention: [],
    targets: [],
    errors: [],
  };
  for (const [k, n] of o.sizes.entries()) {
    step(`quorum: ${n} redis-servers behind relays of ${o.delayMs} ms`);
    let s: Setup;
    try {
      s = await setUp(n, o.delayMs);
    } catch (err) {
      r.errors.push(`N=${n}: setting up: ${String((err as Error)?.message ?? err)}`);
      continue;
    }
    try {
      const prefixOf = (a: QuorumAdapter) => `bench-q${n}-${a.id.replace(/[^A-Za-z0-9]+/g, '-').replace(/-$/, '')}`;
      for (const a of QUORUM_ADAPTERS) {
        step(`quorum N=${n}: ${a.id}: latency`);
        try {
          r.latency.push(await measureLatency(a, s, prefixOf(a), o));
        } catch (err) {
          r.errors.push(`N=${n} ${a.id} latency: ${String((err as Error)?.message ?? err)}`);
        }
      }
      // contention on the first size: at each hold, each library in turn, so the two runs compared are neighbours in time
      for (const holdMs of k === 0 ? o.holdsMs : []) {
        for (const a of QUORUM_ADAPTERS) {
          step(`quorum N=${n}: ${a.id}: ${o.workers}x${o.perWorker} contention, hold ${holdMs} ms`);
          try {
            r.contention.push(await runContention(a, s, prefixOf(a), o, holdMs));
          } catch (err) {
            r.errors.push(`N=${n} ${a.id} contention (hold ${holdMs} ms): ${String((err as Error)?.message ?? err)}`);
          }
        }
      }
    } finally {
      await tearDown(s);
    }
  }
  r.targets = targetsOf(r);
  return r;
}
