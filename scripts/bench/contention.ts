/**
 * One hot lock, P processes x C contenders: throughput, Redis commands and CPU per grant, fairness
 * (overtaking, longest wait, Jain's index) and the share of time the lock is held.
 *
 * Clocks: the workers' stamps are on their own clocks. Each worker's offset is measured just before
 * and just after the run (IPC ping-pong, clock.ts); its start time is sent converted to its clock and
 * its stamps are converted to ours. Durations of one contender (waits, holds) are taken from its own
 * two stamps. Orders across processes: fencing tokens where the library has them, else converted
 * stamps that must be apart by more than both offsets' uncertainty (see stats.ts passedWaiters).
 */
import { randomBytes } from 'node:crypto';
import type { Adapter } from './adapters/types.js';
import { marginMs, now, sleep, spanOffsets, toChild, toParent, type ClockOffset } from './clock.js';
import type { Worker } from './pool.js';
import { RedisStats } from './redis-stats.js';
import { fifoViolations, heldMs, jain, overtaking, round, rwStats, type Acquire, type RwStats } from './stats.js';
import type { ContendKind } from './worker.js';

/** The check's own commands (worker.ts `checkKey`), left out of the per-grant counts. */
const CHECK_COMMANDS = ['incrby', 'decrby'];

export interface ContendOptions {
  contenders: number;
  holdMs: number;
  thinkMs: number;
  durationMs: number;
  leadMs: number;
  drainMs: number;
  maxGrants: number;
  /** A grant overtook a waiter that started waiting more than this much earlier. */
  slackMs: number;
  /** What is contended for (default: the lock). */
  kind?: ContendKind;
  /** Count holders that overlapped others they exclude (worker.ts `checkKey`; its commands are not counted). */
  check?: boolean;
}

export interface ContendResult {
  /** 'lock' (older runs: absent), 'semaphore' or 'rw'. */
  kind?: 'lock' | 'semaphore' | 'rw';
  permits?: number;
  writeShare?: number;
  procs: number;
  contenders: number;
  holdMs: number;
  thinkMs: number;
  durationMs: number;
  /** Grants inside the run's window (converted stamps: a grant within `clock.uncertaintyMs` of an edge may be on either side). */
  grants: number;
  grantsPerSec: number;
  commandsPerGrant: number | null;
  cpuUsPerGrant: number | null;
  /** CPU of the worker processes over the run per grant (µs): the lock library, its Redis client, the bench loop. */
  clientCpuUsPerGrant: number | null;
  commandsByName: Record<string, number>;
  /** Microseconds inside each command per grant (INFO commandstats usec; a script's includes its commands). */
  commandUsPerGrant: Record<string, number>;
  /**
   * Grants that surely overtook a waiter that had started more than `slackMs` earlier: across
   * processes, by more than both clock uncertainties too; grant order from fencing tokens if any.
   */
  overtook: number;
  overtakingShare: number | null;
  /**
   * Grants that passed a waiter already queued (onQueued fired) before the grantee called acquire()
   * (across processes: by more than both clock uncertainties); grant order from tokens. fairlock only.
   */
  fifoViolations: number | null;
  /**
   * Of the overtaken waiters, the longest head start one had (ms): a few ms is client-side scheduling.
   * Between two processes it is within twice `clock.uncertaintyMs`.
   */
  overtakenLeadMaxMs: number | null;
  /** Longest wait, each from one contender's own two stamps (one process, no offset). */
  maxWaitMs: number | null;
  jain: number | null;
  /** Share of the window the lock was held: one process's hold intervals, clipped to the window with the offsets. */
  heldShare: number | null;
  /**
   * Holders that found others holding that they exclude (more than `permits` permits, a read with a
   * write, a write with anyone), decided by Redis's order of INCRBY/DECRBY around each hold. Null
   * when not checked.
   */
  violations?: number | null;
  /** Read-write runs: by side, and what each writer had ahead of it. */
  rw?: RwStats;
  pendingAtEnd: number;
  clock: ContendClock;
}

/** How this run's worker stamps were put on the parent's clock. */
export interface ContendClock {
  /** Largest of the workers' `uncertaintyMs`: a converted stamp is within this of the truth. */
  uncertaintyMs: number;
  /** Largest |driftMs| of the workers. */
  maxDriftMs: number;
  workers: {
    pid: number;
    /** Worker clock minus ours, measured right after the worker started. */
    offsetAtStartMs: number;
    /** The offset used for this run: the hull of the measurements just before and just after it. */
    offsetMs: number;
    uncertaintyMs: number;
    /** Offset just after this run minus the one right after the worker started. */
    driftMs: number;
  }[];
}

async function measureAll(pool: Worker[]): Promise<ClockOffset[]> {
  const out: ClockOffset[] = [];
  for (const w of pool) out.push(await w.measureClock()); // one at a time: no queueing inflates the round trips
  return out;
}

export async function runContention(
  pool: Worker[],
  stats: RedisStats,
  adapter: Adapter,
  url: string,
  prefix: string,
  name: string,
  o: ContendOptions,
): Promise<ContendResult> {
  const before = await measureAll(pool);
  const checkKey = o.check ? `${prefix}:bench-check:${name}:${randomBytes(4).toString('hex')}` : undefined;
  const startAt = now() + o.leadMs;
  const end = startAt + o.durationMs;
  const replies = Promise.all(
    pool.map((w, i) =>
      w.call(
        { op: 'contend', lib: adapter.id, url, prefix, name, contenders: o.contenders, holdMs: o.holdMs, thinkMs: o.thinkMs,
          startAt: toChild(startAt, before[i]!), durationMs: o.durationMs, drainMs: o.drainMs, maxGrants: o.maxGrants, seed: i,
          ...(o.kind ? { kind: o.kind } : {}), ...(checkKey ? { checkKey } : {}) },
        o.durationMs + o.drainMs + 15_000,
      ),
    ),
  );
  await sleep(startAt - now());
  const s1 = await stats.snapshot();
  await sleep(end - now());
  const s2 = await stats.snapshot();
  const all = await replies;
  const after = await measureAll(pool);
  const offsets = pool.map((_, i) => spanOffsets(before[i]!, after[i]!));
  const acquires: Acquire[] = all.flatMap((r, proc) => {
    if (!r.ok) return [];
    const p = (t: number) => toParent(t, offsets[proc]!);
    const queued = (q: number | undefined) => (q === undefined ? {} : { queuedAt: p(q) });
    const side = (x: { mode?: 'r' | 'w'; position?: number }) => ({ ...(x.mode ? { mode: x.mode } : {}), ...(x.position === undefined ? {} : { position: x.position }) });
    return [
      ...(r.grants ?? []).map((g) => ({
        proc, contender: g.contender, start: p(g.start), got: p(g.got), rel: p(g.rel), ...queued(g.queuedAt), ...(g.token === undefined ? {} : { token: g.token }), ...side(g),
      })),
      ...(r.pending ?? []).map((w) => ({
        proc, contender: w.contender, start: p(w.start), got: Infinity, rel: Infinity, ...queued(w.queuedAt), ...side(w), waitedMs: w.waitedMs,
      })),
    ];
  });
  const pendingAtEnd = all.reduce((a, r) => a + (r.ok ? (r.pending?.length ?? 0) : 0), 0);
  const inWindow = acquires.filter((g) => g.got >= startAt && g.got <= end);
  const d = RedisStats.delta(s1, s2);
  for (const k of CHECK_COMMANDS) {
    d.commands -= d.byCommand[k] ?? 0;
    delete d.byCommand[k];
    delete d.usecByCommand[k];
  }
  const perContender = new Map<string, number>();
  for (const w of pool) for (let i = 0; i < o.contenders; i++) perContender.set(`${w.pid}:${i}`, 0);
  for (const g of inWindow) perContender.set(g.contender, (perContender.get(g.contender) ?? 0) + 1);
  // Waits: each from its contender's own two stamps (one process, one clock).
  const waits = all.flatMap((r) => (r.ok ? [...(r.grants ?? []).map((g) => g.got - g.start), ...(r.pending ?? []).map((w) => w.waitedMs)] : []));
  const margin = marginMs(offsets);
  const ov = overtaking(acquires, o.slackMs, margin);
  const n = inWindow.length;
  const violations = o.check ? all.reduce((a, r) => a + (r.ok ? (r.violations ?? 0) : 0), 0) : null;
  return {
    kind: o.kind?.type ?? 'lock',
    ...(o.kind?.type === 'semaphore' ? { permits: o.kind.permits } : {}),
    ...(o.kind?.type === 'rw' ? { writeShare: o.kind.writeShare } : {}),
    procs: pool.length,
    contenders: o.contenders,
    holdMs: o.holdMs,
    thinkMs: o.thinkMs,
    durationMs: o.durationMs,
    grants: n,
    grantsPerSec: round((n / o.durationMs) * 1000, 1)!,
    commandsPerGrant: n ? round(d.commands / n, 2) : null,
    cpuUsPerGrant: n ? round((d.cpuSeconds * 1e6) / n, 1) : null,
    clientCpuUsPerGrant: n ? round(all.reduce((a, r) => a + (r.ok ? (r.cpuUs ?? 0) : 0), 0) / n, 1) : null,
    commandsByName: d.byCommand,
    commandUsPerGrant: Object.fromEntries(Object.entries(d.usecByCommand).map(([k, v]) => [k, n ? round(v / n, 2)! : 0])),
    overtook: ov.overtook,
    overtakingShare: round(ov.share, 4),
    overtakenLeadMaxMs: round(ov.maxLeadMs, 1),
    fifoViolations: fifoViolations(acquires, margin),
    maxWaitMs: waits.length ? round(Math.max(...waits), 1) : null,
    jain: round(jain([...perContender.values()]), 4),
    heldShare: round(heldMs(acquires, startAt, end) / o.durationMs, 4),
    violations,
    ...(o.kind?.type === 'rw' ? { rw: rwStats(acquires, startAt, end) } : {}),
    pendingAtEnd,
    clock: {
      uncertaintyMs: round(Math.max(...offsets.map((x) => x.uncertaintyMs)), 3)!,
      maxDriftMs: round(Math.max(...pool.map((w, i) => Math.abs(after[i]!.offsetMs - w.clockAtStart.offsetMs))), 3)!,
      workers: pool.map((w, i) => ({
        pid: w.pid,
        offsetAtStartMs: round(w.clockAtStart.offsetMs, 3)!,
        offsetMs: round(offsets[i]!.offsetMs, 3)!,
        uncertaintyMs: round(offsets[i]!.uncertaintyMs, 3)!,
        driftMs: round(after[i]!.offsetMs - w.clockAtStart.offsetMs, 3)!,
      })),
    },
  };
}
