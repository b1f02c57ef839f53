import { performance } from 'node:perf_hooks';
import { FairLockError } from './errors.js';

/** Local monotonic time in ms. Deadlines kept in this process use it, never the wall clock. */
export const monotonic = (): number => performance.now();

/**
 * Runs `fn` once, when monotonic() has reached `deadline`; `cancel()` stops it. Node may run a timer
 * up to ~1 ms before its time by performance.now() (it counts in whole ms of its loop clock and
 * truncates the delay: measured in 2-3% of timers): such an early run waits out the rest, so `fn`
 * never sees a deadline that has not passed. `unref`: the timer does not keep the process alive.
 */
export function atDeadline(deadline: number, fn: () => void, unref = false): { cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(check, Math.ceil(Math.max(0, deadline - monotonic())));
    if (unref) timer.unref();
  };
  const check = () => (monotonic() < deadline ? arm() : fn());
  arm();
  return { cancel: () => clearTimeout(timer) };
}

/** Every script reply carries Redis's clock (`now`) and the local time the call was sent (`sentAt`). */
export interface Stamped {
  now: number;
  sentAt: number;
}

/**
 * The bound on the clock offset that turns Redis deadlines into local ones: a reply stamped `now`
 * by Redis to a call sent at local `sentAt` proves that redis - local <= now - sentAt, so a Redis
 * deadline D is reached no earlier than local time D - (now - sentAt).
 */
export class ClockBound {
  private offsetUpper: number | undefined;

  observe(sample: Stamped): void {
    this.offsetUpper = sample.now - sample.sentAt;
  }

  /** The earliest local monotonic time at which Redis's clock can reach `redisMs`. */
  toLocal(redisMs: number, sample?: Stamped): number {
    const offset = sample ? sample.now - sample.sentAt : this.offsetUpper;
    if (offset === undefined) throw new FairLockError('no clock sample yet', 'INTERNAL');
    return redisMs - offset;
  }
}
