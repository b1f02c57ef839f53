/**
 * The bench's clock, and the only way two processes' stamps may meet: through a measured offset.
 *
 * `now()` is this process's clock. Another process's `now()` is on another time line: a fresh Node
 * process's `performance.timeOrigin` can be several ms (~20 ms seen on a loaded machine) off the wall
 * clock, so the raw stamps of two processes are never compared, subtracted or ordered. Instead the
 * parent measures each worker's offset by IPC ping-pong (`measureOffset`) and converts the worker's
 * stamps into its own clock (`toParent`); any comparison of stamps from two processes then carries
 * both offsets' uncertainty (`marginMs`). Orders that a fact decides (fencing tokens, one process's
 * own stamps) do not need this.
 */
import { performance } from 'node:perf_hooks';

/** This process's clock, in ms with sub-ms precision. Not comparable with another process's without an offset. */
export const now = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Resolves `p`, or `undefined` once `ms` have passed. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), Math.max(0, ms))));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * Another process's clock against ours: its `now()` = our `now()` + `offsetMs`, the true offset being
 * within +-`uncertaintyMs` of that.
 */
export interface ClockOffset {
  offsetMs: number;
  uncertaintyMs: number;
}

/**
 * Ping-pong: `ask()` sends a request to the other process and resolves with its `now()` as it
 * answered. We stamp t0 before sending and t1 on the answer; the other clock was read somewhere in
 * [t0, t1], so offset = tc - (t0 + t1) / 2 +- (t1 - t0) / 2. Of `rounds` samples, the one with the
 * smallest round trip (the tightest bound) is kept.
 */
export async function measureOffset(ask: () => Promise<number>, rounds = 20): Promise<ClockOffset & { rttMs: number }> {
  let best: (ClockOffset & { rttMs: number }) | undefined;
  for (let i = 0; i < rounds; i++) {
    const t0 = now();
    const tc = await ask();
    const t1 = now();
    if (!best || t1 - t0 < best.rttMs) best = { offsetMs: tc - (t0 + t1) / 2, uncertaintyMs: (t1 - t0) / 2, rttMs: t1 - t0 };
  }
  if (!best) throw new Error('measureOffset: no rounds');
  return best;
}

/**
 * One offset for a stretch of time measured at both ends: the smallest interval holding both
 * measurements' intervals. Valid at any moment in between as long as the offset moved one way only
 * (two monotonic clocks on one machine: it should not move at all; `driftMs` shows whether it did).
 */
export function spanOffsets(before: ClockOffset, after: ClockOffset): ClockOffset & { driftMs: number } {
  const lo = Math.min(before.offsetMs - before.uncertaintyMs, after.offsetMs - after.uncertaintyMs);
  const hi = Math.max(before.offsetMs + before.uncertaintyMs, after.offsetMs + after.uncertaintyMs);
  return { offsetMs: (lo + hi) / 2, uncertaintyMs: (hi - lo) / 2, driftMs: after.offsetMs - before.offsetMs };
}

/** A stamp of the other process, on our clock. */
export const toParent = (t: number, o: ClockOffset): number => t - o.offsetMs;

/** A moment on our clock, on the other process's clock (e.g. when it should start). */
export const toChild = (t: number, o: ClockOffset): number => t + o.offsetMs;

/**
 * How far apart two converted stamps must be for their order to be certain: 0 when both were read in
 * the same process (its offset cancels out), else the sum of both offsets' uncertainties.
 */
export function marginMs(offsets: readonly ClockOffset[]): (procA: number, procB: number) => number {
  return (a, b) => (a === b ? 0 : offsets[a]!.uncertaintyMs + offsets[b]!.uncertaintyMs);
}
