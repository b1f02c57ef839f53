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

/** One acquire as a contender saw it: when it called acquire(), got the lock, and called release(). */
export interface Grant {
  contender: string;
  start: number;
  got: number;
  rel: number;
  /** When the library confirmed the waiter was queued (fairlock only). */
  queuedAt?: number;
}

/**
 * fairlock's own FIFO promise, checked exactly: grants to B while some A whose onQueued had fired
 * before B even called acquire() was still waiting. No slack needed: both times are on one clock.
 * Null when the library reports no queue times.
 */
export function fifoViolations(grants: Grant[]): number | null {
  const queued = grants.filter((g) => g.queuedAt !== undefined).sort((a, b) => a.queuedAt! - b.queuedAt!);
  if (queued.length === 0) return null;
  const prefixMaxGot: number[] = [];
  let m = -Infinity;
  for (const q of queued) prefixMaxGot.push((m = Math.max(m, q.got)));
  let bad = 0;
  for (const g of grants) {
    let lo = 0;
    let hi = queued.length - 1;
    let idx = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (queued[mid]!.queuedAt! < g.start) {
        idx = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (idx >= 0 && prefixMaxGot[idx]! > g.got) bad++;
  }
  return bad;
}

/**
 * Share of grants that overtook a waiter: grant g overtook if some other acquire started more than
 * `slackMs` before g's and was still waiting when g was granted. O(n log n): sort by start and keep
 * the latest grant time of every acquire that started earlier.
 * `pending` are acquires still waiting at the end (got = Infinity).
 */
export function overtaking(
  grants: Grant[],
  pending: { start: number }[],
  slackMs: number,
): { overtook: number; share: number | null; maxLeadMs: number | null } {
  const all = [...grants.map((g) => ({ start: g.start, got: g.got })), ...pending.map((p) => ({ start: p.start, got: Infinity }))];
  all.sort((a, b) => a.start - b.start);
  const starts = all.map((a) => a.start);
  const prefixMaxGot: number[] = [];
  let m = -Infinity;
  for (const a of all) prefixMaxGot.push((m = Math.max(m, a.got)));
  let overtook = 0;
  let maxLead: number | null = null;
  for (const g of grants) {
    // last index with start < g.start - slack
    let lo = 0;
    let hi = starts.length - 1;
    let idx = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! < g.start - slackMs) {
        idx = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (idx >= 0 && prefixMaxGot[idx]! > g.got) {
      overtook++;
      // how much earlier the earliest overtaken waiter had started
      const first = all.findIndex((a) => a.got > g.got);
      if (first >= 0 && first <= idx) maxLead = Math.max(maxLead ?? 0, g.start - all[first]!.start);
    }
  }
  return { overtook, share: grants.length ? overtook / grants.length : null, maxLeadMs: maxLead };
}

/** Time the lock was held inside [from, to], from non-overlapping hold intervals. */
export function heldMs(grants: Grant[], from: number, to: number): number {
  let sum = 0;
  for (const g of grants) sum += Math.max(0, Math.min(g.rel, to) - Math.max(g.got, from));
  return sum;
}

export const round = (x: number | null | undefined, digits = 2): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits));
