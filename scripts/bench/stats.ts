/** Small statistics the report needs: percentiles, Jain's fairness index, overtaking grants. */
import { quantileSorted } from 'simple-statistics';

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
}

/** An acquire still waiting at the end, on its process's clock; `waitedMs` measured there too. */
export interface Pending {
  contender: string;
  start: number;
  queuedAt?: number;
  waitedMs: number;
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
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! > bound) hi = mid;
    else lo = mid + 1;
  }
  return lo;
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

export const round = (x: number | null | undefined, digits = 2): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits));
