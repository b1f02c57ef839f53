/** Small statistics the report needs: percentiles, Jain's fairness index, overtaking grants. */
import { quantileSorted } from 'simple-statistics';
import { firstIndex } from '../first-index.js';

export interface Dist {
  n: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

export function dist(samples: number[]): Dist {
  if (samples.length === 0) return { n: 0, p50: null, p99: null, max: null };
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: quantileSorted(s, 0.5), p99: quantileSorted(s, 0.99), max: s[s.length - 1]! };
}

/** Jain's index over per-contender grant counts: 1 = perfectly even, 1/n = one contender got all. */
export function jain(counts: number[]): number | null {
  const sum = counts.reduce((a, b) => a + b, 0);
  const sq = counts.reduce((a, b) => a + b * b, 0);
  return sq === 0 ? null : (sum * sum) / (counts.length * sq);
}

/**
 * One acquire as a contender saw it, stamped on ITS process's clock (see clock.ts): when it called
 * acquire(), when the library said it was queued (fairlock's onQueued), when it got the lock and when
 * it called release(). `token`: the fencing token, if the library has one.
 */
export interface Grant {
  contender: string;
  start: number;
  got: number;
  rel: number;
  queuedAt?: number;
  token?: number;
  /** Read-write runs: which side was asked for. */
  mode?: 'r' | 'w';
  /** The queue position onQueued reported (1 = next); absent when granted at once. */
  position?: number;
}

/** An acquire still waiting at the end, on its process's clock; `waitedMs` measured there too. */
export interface Pending {
  contender: string;
  start: number;
  queuedAt?: number;
  waitedMs: number;
  mode?: 'r' | 'w';
  position?: number;
}

/**
 * An acquire with its stamps converted to the parent's clock. `proc` says which process read them:
 * stamps of one process compare exactly, stamps of two only with the margin of their offsets.
 * `got` and `rel` are Infinity for an acquire still waiting at the end.
 */
export interface Acquire {
  proc: number;
  contender: string;
  start: number;
  got: number;
  rel: number;
  queuedAt?: number;
  token?: number;
  mode?: 'r' | 'w';
  position?: number;
  /** Still waiting at the end: how long so far, on its own process's clock. */
  waitedMs?: number;
}

/** Last index i with xs[i] < bound (xs sorted ascending), or -1. */
function lastBelow(xs: number[], bound: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  let idx = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! < bound) {
      idx = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return idx;
}

/** First index i with xs[i] > bound (xs non-decreasing), or xs.length. */
function firstAbove(xs: number[], bound: number): number {
  return firstIndex(xs.length, (i) => xs[i]! > bound);
}

/**
 * For every grant g: of the acquires A that surely began waiting (`since(A)`) more than `slackMs`
 * before g called acquire(), and surely were still waiting when g was granted, how long before g the
 * earliest of them began; grants that passed nobody are absent. "Surely": no clock error can flip it:
 *  - began before: converted stamps, apart by more than `margin(A, g)` (0 within one process);
 *  - still waiting: A never got the lock; or, when every grant has a fencing token, a larger token
 *    (tokens increase in grant order: a fact Redis orders, no clock); else a converted `got` later by
 *    more than the margin.
 * O(P * n log n) for P processes: one sweep per process of the waiters, sorted by `since`, with the
 * running maximum of their grant order.
 */
function passedWaiters(
  acquires: Acquire[],
  since: (a: Acquire) => number | undefined,
  slackMs: number,
  margin: (procA: number, procB: number) => number,
): Map<Acquire, number> {
  const grants = acquires.filter((a) => Number.isFinite(a.got));
  const byToken = grants.length > 0 && grants.every((g) => g.token !== undefined);
  const order = (a: Acquire) => (!Number.isFinite(a.got) ? Infinity : byToken ? a.token! : a.got);
  const out = new Map<Acquire, number>();
  for (const proc of new Set(acquires.map((a) => a.proc))) {
    const waiters = acquires.filter((a) => a.proc === proc && since(a) !== undefined).sort((x, y) => since(x)! - since(y)!);
    if (waiters.length === 0) continue;
    const sinces = waiters.map((a) => since(a)!);
    const runningMax: number[] = [];
    let top = -Infinity;
    for (const a of waiters) runningMax.push((top = Math.max(top, order(a))));
    for (const g of grants) {
      const m = margin(proc, g.proc);
      const idx = lastBelow(sinces, g.start - slackMs - m);
      if (idx < 0) continue;
      const after = byToken ? g.token! : g.got + m;
      if (runningMax[idx]! <= after) continue;
      const lead = g.start - sinces[firstAbove(runningMax, after)]!;
      out.set(g, Math.max(out.get(g) ?? -Infinity, lead));
    }
  }
  return out;
}

/**
 * fairlock's own FIFO promise: grants to B while some A, whose onQueued had fired before B even
 * called acquire(), was still waiting. No slack; the only allowance is the clock margin between two
 * processes (0 within one), and "still waiting" is decided by fencing tokens. Null when the library
 * reports no queue times.
 */
export function fifoViolations(acquires: Acquire[], margin: (procA: number, procB: number) => number): number | null {
  if (!acquires.some((a) => a.queuedAt !== undefined)) return null;
  return passedWaiters(acquires, (a) => a.queuedAt, 0, margin).size;
}

/**
 * Grants that overtook a waiter: some other acquire had started more than `slackMs` before this
 * grant's acquire() (plus the clock margin, if in another process) and was still waiting when it was
 * granted (tokens decide where the library has them). Acquires still waiting at the end count as
 * never granted. `maxLeadMs`: of the overtaken waiters, the longest head start one had.
 */
export function overtaking(
  acquires: Acquire[],
  slackMs: number,
  margin: (procA: number, procB: number) => number,
): { overtook: number; share: number | null; maxLeadMs: number | null } {
  const passed = passedWaiters(acquires, (a) => a.start, slackMs, margin);
  const n = acquires.filter((a) => Number.isFinite(a.got)).length;
  return { overtook: passed.size, share: n ? passed.size / n : null, maxLeadMs: passed.size ? Math.max(...passed.values()) : null };
}

/**
 * Time the lock was held inside [from, to]: the sum of the hold intervals (mutual exclusion makes
 * them disjoint). Each interval is one process's two stamps; only the clipping to [from, to] depends
 * on its offset.
 */
export function heldMs(acquires: Acquire[], from: number, to: number): number {
  let sum = 0;
  for (const a of acquires) if (Number.isFinite(a.got)) sum += Math.max(0, Math.min(a.rel, to) - Math.max(a.got, from));
  return sum;
}

/** A read-write run's figures: throughput by side, and what each writer had ahead of it. */
export interface RwStats {
  /** Grants inside the run's window. */
  reads: number;
  writes: number;
  readsPerSec: number;
  writesPerSec: number;
  /** Longest wait of a reader / a writer (still waiting at the end counts with its wait so far). */
  readerMaxWaitMs: number | null;
  writerMaxWaitMs: number | null;
  writerWaitP50Ms: number | null;
  /**
   * The writer that waited longest, and what was queued ahead of it when it queued: `queuedAhead`
   * = its onQueued position - 1 (0 when granted at once; null when still waiting at the end and not
   * yet queued), of which `readsAhead` reads (null when that cannot be resolved from the tokens,
   * e.g. it was still waiting at the end).
   */
  longestWriter: { waitMs: number; queuedAhead: number | null; readsAhead: number | null; granted: boolean } | null;
  /** Of every writer, the most reads that were queued ahead of it. */
  maxReadsAheadOfWriter: number | null;
  /** Writers that were queued (not granted at once). */
  writersQueued: number;
  /** Queued writers whose reads ahead could not be resolved from the tokens (should be 0 for granted ones). */
  unresolved: number;
}

/**
 * Read-write figures. What was ahead of a writer W when it queued is decided from tokens, no clock:
 * in a strict FIFO queue every enqueue appends and every grant takes the head, and fairlock's tokens
 * rise in grant order, so for a granted W the requests ahead of it when it joined are the
 * `position - 1` queued acquires (onQueued fired) with the largest tokens below W's token: each was
 * granted before W (FIFO) and after every request granted before W joined.
 */
export function rwStats(acquires: Acquire[], from: number, to: number): RwStats {
  const inWindow = acquires.filter((a) => a.got >= from && a.got <= to);
  const seconds = (to - from) / 1000;
  const wait = (a: Acquire) => (Number.isFinite(a.got) ? a.got - a.start : (a.waitedMs ?? 0));
  const queued = acquires
    .filter((a) => a.queuedAt !== undefined && a.token !== undefined && Number.isFinite(a.got))
    .sort((x, y) => x.token! - y.token!);
  const index = new Map(queued.map((a, i) => [a, i]));
  const readers = acquires.filter((a) => a.mode === 'r');
  const writers = acquires.filter((a) => a.mode === 'w');
  let longest: RwStats['longestWriter'] = null;
  let maxReads: number | null = null;
  let unresolved = 0;
  let writersQueued = 0;
  for (const w of writers) {
    const isQueued = w.position !== undefined;
    const granted = Number.isFinite(w.got);
    if (isQueued) writersQueued++;
    const ahead = isQueued ? w.position! - 1 : granted ? 0 : null;
    let reads: number | null = isQueued || !granted ? null : 0;
    const i = index.get(w);
    if (ahead !== null && isQueued && i !== undefined && i - ahead >= 0) reads = queued.slice(i - ahead, i).filter((a) => a.mode === 'r').length;
    if (isQueued && reads === null && granted) unresolved++;
    if (reads !== null) maxReads = Math.max(maxReads ?? 0, reads);
    const ms = wait(w);
    if (!longest || ms > longest.waitMs) longest = { waitMs: ms, queuedAhead: ahead, readsAhead: reads, granted };
  }
  const maxOf = (xs: Acquire[]) => (xs.length ? Math.max(...xs.map(wait)) : null);
  const r1 = (x: number | null) => round(x, 1);
  return {
    reads: inWindow.filter((a) => a.mode === 'r').length,
    writes: inWindow.filter((a) => a.mode === 'w').length,
    readsPerSec: round(inWindow.filter((a) => a.mode === 'r').length / seconds, 1)!,
    writesPerSec: round(inWindow.filter((a) => a.mode === 'w').length / seconds, 1)!,
    readerMaxWaitMs: r1(maxOf(readers)),
    writerMaxWaitMs: r1(maxOf(writers)),
    writerWaitP50Ms: r1(dist(writers.map(wait)).p50),
    longestWriter: longest && { ...longest, waitMs: r1(longest.waitMs)! },
    maxReadsAheadOfWriter: maxReads,
    writersQueued,
    unresolved,
  };
}

export const round = (x: number | null | undefined, digits = 2): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits));
