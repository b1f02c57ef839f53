import type { Lease } from '../client/lease.js';
import type { SemaphoreAcquireOptions } from '../options.js';
import { FairLock } from './lock.js';

/**
 * A fair counting semaphore: at most `permits` held at once, granted in FIFO order; a request that
 * does not fit holds back those behind it. The lock's driver with a limit and a weight per request.
 */
export class FairSemaphore extends FairLock {
  /** The limit this handle asks for (a busy name keeps the one it has; see LimitMismatchError). */
  get permits(): number {
    return this.spec.limit;
  }

  /** The most permits one group may hold at once, as this handle asks; undefined for no cap. */
  get perGroup(): number | undefined {
    return this.spec.perGroup;
  }

  /** Waits in FIFO order for `weight` permits (default 1) and resolves with the lease. */
  override acquire(options?: SemaphoreAcquireOptions): Promise<Lease> {
    return super.acquire(options);
  }

  /** One attempt: a lease if `weight` permits are free and nobody is queued, else null. */
  override tryAcquire(options?: Omit<SemaphoreAcquireOptions, 'timeoutMs' | 'onQueued'>): Promise<Lease | null> {
    return super.tryAcquire(options);
  }

  override using<T>(fn: (lease: Lease) => Promise<T> | T, options?: SemaphoreAcquireOptions): Promise<T> {
    return super.using(fn, options);
  }
}
