/**
 * A hand-written fake clock for the unit tests of src/client/: while installed, setTimeout,
 * clearTimeout and performance.now (what monotonic() reads) are its own, and time moves only when a
 * test calls tick(). Each timer that falls due runs in deadline order, and the promise jobs it starts
 * settle before the next one runs, so a test reads like a timeline. One clock at a time (the tests
 * that use it run serially).
 */
import { performance } from 'node:perf_hooks';

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

export interface FakeClock {
  /** The fake monotonic time, in ms. */
  now(): number;
  /** Moves time `ms` ahead, running every timer that falls due, in order. */
  tick(ms: number): Promise<void>;
  /** Settles the promise jobs waiting now (no time passes). */
  flush(): Promise<void>;
  /** Timers armed and not run or cleared. */
  pending(): number;
  uninstall(): void;
}

const realSetImmediate = setImmediate;

export function installClock(start = 10_000): FakeClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, Timer>();
  const saved = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout, now: Object.getOwnPropertyDescriptor(performance, 'now') };

  const handle = (id: number) => ({ id, unref: () => handle(id), ref: () => handle(id), hasRef: () => false, [Symbol.toPrimitive]: () => id });
  globalThis.setTimeout = ((fn: () => void, ms = 0) => {
    const id = ++seq;
    timers.set(id, { id, at: now + Math.max(0, Number(ms) || 0), fn });
    return handle(id);
  }) as unknown as typeof setTimeout;
  globalThis.clearTimeout = ((h: unknown) => {
    if (h !== undefined && h !== null) timers.delete(Number(h));
  }) as typeof clearTimeout;
  Object.defineProperty(performance, 'now', { value: () => now, configurable: true, writable: true });

  const flush = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => realSetImmediate(r));
  };
  return {
    now: () => now,
    flush,
    pending: () => timers.size,
    async tick(ms) {
      const until = now + ms;
      for (let guard = 0; guard < 10_000; guard++) {
        let next: Timer | undefined;
        for (const t of timers.values()) if (t.at <= until && (!next || t.at < next.at || (t.at === next.at && t.id < next.id))) next = t;
        if (!next) break;
        timers.delete(next.id);
        now = Math.max(now, next.at);
        next.fn();
        await flush();
      }
      now = until;
      await flush();
    },
    uninstall() {
      globalThis.setTimeout = saved.setTimeout;
      globalThis.clearTimeout = saved.clearTimeout;
      if (saved.now) Object.defineProperty(performance, 'now', saved.now);
      else delete (performance as { now?: unknown }).now;
      timers.clear();
    },
  };
}
