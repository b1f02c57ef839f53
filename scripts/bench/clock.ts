import { performance } from 'node:perf_hooks';

/** Wall-clock ms with sub-ms precision: one clock for every process on this machine. */
export const now = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Resolves `p`, or `undefined` once `ms` have passed. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), Math.max(0, ms))));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
