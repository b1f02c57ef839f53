/**
 * W waiters on a lock that stays held: Redis commands per second while they wait (blocking must
 * not be polling) and Redis memory per waiter. The waiters are spread over the worker processes;
 * the holder is in this process.
 *
 * The window counts waiting only, not enqueuing: where the library tells (fairlock's onQueued) it
 * starts once every worker has answered that all its waiters are in the queue, so every enqueue
 * script has run before the INFO that opens the window (no clocks compared, the order is causal).
 * Where it cannot (polling peers have no queue), it starts after a fixed settle delay, and the row
 * says so (`windowFrom`).
 */
import type { Adapter } from './adapters/types.js';
import { now, sleep } from './clock.js';
import type { Worker } from './pool.js';
import { RedisStats } from './redis-stats.js';
import { round } from './stats.js';

export interface WaitersOptions {
  counts: number[];
  windowMs: number;
  /** How long the workers may take to get all their waiters queued; the window then starts anyway. */
  queueCapMs: number;
}

export interface WaitersResult {
  waiters: number;
  commandsPerSec: number;
  cpuShare: number;
  bytesPerWaiter: number | null;
  commandsByName: Record<string, number>;
  /** Waiters that got the lock anyway (e.g. the holder's TTL ran out): should be 0. */
  grantedWhileHeld: number;
  /** What the window waited for: every waiter queued (onQueued), or a settle delay (library cannot tell). */
  windowFrom: 'queued' | 'settle';
  /** Waiters in the queue when the window started (below `waiters`: the cap was hit); null if the library cannot tell. */
  queued: number | null;
  /** From sending the waits to all queued (or to the settle delay's end), on this process's clock. */
  readyMs: number;
  /** The window, on Redis's clock: between the two INFOs whose deltas give the rates. */
  windowSec: number;
}

/** For libraries that cannot say when their waiters are set: enough for a few thousand first tries. */
const settleMs = (w: number) => Math.min(800, 100 + w / 15);

/**
 * The window opens this long after the waiters are set. fairlock's heartbeats (1 s, one per process)
 * are in phase with that moment: with few waiters their timers start with the first wait, with
 * 10,000 the first beat queues behind the enqueue scripts and the next ones follow 1 s apart. A 2 s
 * window opened right then ends right on a beat and catches it or not by chance (seen: 25 instead of
 * 41 commands/s at W = 10, 37 at W = 10,000); half a period later both edges fall between beats.
 */
const PHASE_MS = 500;

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
    const t0 = now();
    const waits = await Promise.all(
      active.map((worker, i) => worker.call({ op: 'wait', name, count: shares[i]!, capMs: o.queueCapMs }, o.queueCapMs + 15_000)),
    );
    const queued = adapter.reportsQueued ? waits.reduce((a, r) => a + (r.ok ? (r.queued ?? 0) : 0), 0) : null;
    if (queued === null) await sleep(settleMs(w));
    const readyMs = now() - t0;
    await sleep(PHASE_MS);
    const s1 = await stats.snapshot();
    await sleep(o.windowMs);
    const s2 = await stats.snapshot();
    const replies = await Promise.all(active.map((worker) => worker.call({ op: 'unwait' }, 15_000)));
    const d = RedisStats.delta(s1, s2);
    await held.release().catch(() => undefined);
    return {
      waiters: w,
      commandsPerSec: round(d.commands / d.seconds, 1)!,
      cpuShare: round(d.cpuSeconds / d.seconds, 4)!,
      bytesPerWaiter: round((s1.usedMemory - s0.usedMemory) / w, 1),
      commandsByName: Object.fromEntries(Object.entries(d.byCommand).map(([k, v]) => [k, round(v / d.seconds, 1)!])),
      grantedWhileHeld: replies.reduce((a, r) => a + (r.ok ? (r.granted ?? 0) : 0), 0),
      windowFrom: queued === null ? 'settle' : 'queued',
      queued,
      readyMs: round(readyMs, 0)!,
      windowSec: round(d.seconds, 3)!,
    };
  } finally {
    await holder.destroy();
  }
}
