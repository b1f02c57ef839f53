/**
 * W waiters on a lock that stays held: Redis commands per second while they wait (blocking must
 * not be polling) and Redis memory per waiter. The waiters are spread over the worker processes;
 * the holder is in this process.
 */
import type { Adapter } from './adapters/types.js';
import { now, sleep } from './clock.js';
import type { Worker } from './pool.js';
import { RedisStats } from './redis-stats.js';
import { round } from './stats.js';

export interface WaitersOptions {
  counts: number[];
  windowMs: number;
}

export interface WaitersResult {
  waiters: number;
  commandsPerSec: number;
  cpuShare: number;
  bytesPerWaiter: number | null;
  commandsByName: Record<string, number>;
  /** Waiters that got the lock anyway (e.g. the holder's TTL ran out): should be 0. */
  grantedWhileHeld: number;
}

export async function runWaiters(
  pool: Worker[],
  stats: RedisStats,
  adapter: Adapter,
  url: string,
  prefix: string,
  w: number,
  o: WaitersOptions,
): Promise<WaitersResult> {
  const name = `waiters-${w}`;
  const holder = await adapter.create(url, prefix);
  try {
    const held = await holder.acquire(name);
    const shares = pool.map((_, i) => Math.floor(w / pool.length) + (i < w % pool.length ? 1 : 0));
    const active = pool.filter((_, i) => shares[i]! > 0);
    await Promise.all(active.map((worker) => worker.call({ op: 'prepare', lib: adapter.id, url, prefix, name }, 15_000)));
    await sleep(50);
    const s0 = await stats.snapshot();
    await Promise.all(active.map((worker, i) => worker.call({ op: 'wait', name, count: shares[i]! }, 30_000)));
    // let every waiter get into its steady state (enqueued, or polling)
    await sleep(Math.min(800, 100 + w / 15));
    const s1 = await stats.snapshot();
    const t1 = now();
    await sleep(o.windowMs);
    const s2 = await stats.snapshot();
    const seconds = (now() - t1) / 1000;
    const replies = await Promise.all(active.map((worker) => worker.call({ op: 'unwait' }, 15_000)));
    const d = RedisStats.delta(s1, s2);
    await held.release().catch(() => undefined);
    return {
      waiters: w,
      commandsPerSec: round(d.commands / seconds, 1)!,
      cpuShare: round(d.cpuSeconds / seconds, 4)!,
      bytesPerWaiter: round((s1.usedMemory - s0.usedMemory) / w, 1),
      commandsByName: Object.fromEntries(Object.entries(d.byCommand).map(([k, v]) => [k, round(v / seconds, 1)!])),
      grantedWhileHeld: replies.reduce((a, r) => a + (r.ok ? (r.granted ?? 0) : 0), 0),
    };
  } finally {
    await holder.destroy();
  }
}
