import { AsyncLocalStorage } from 'node:async_hooks';
import { FairLockError, InvalidArgumentError, LockAbortedError, LockTimeoutError } from './errors.js';
import type { FairLocks } from './fair-locks.js';
import { lockKeys } from './keys.js';
import { Lease } from './lease.js';
import { checkObject, describe, resolveAcquire, type AcquireOptions, type ResolvedAcquire } from './options.js';
import { Waiter } from './waiter.js';

/** Leases held by the `using()` callbacks the current async context runs in, by session and name. */
const held = new AsyncLocalStorage<ReadonlyMap<string, Lease>>();

/** A handle on one named lock. Cheap: no I/O until acquire. */
export class FairLock {
  constructor(
    private readonly locks: FairLocks,
    readonly name: string,
    private readonly defaults: AcquireOptions = {},
  ) {}

  /** Waits in FIFO order and resolves with the lease. */
  async acquire(options?: AcquireOptions): Promise<Lease> {
    const o = this.resolve(options);
    const nested = this.nested(o);
    if (nested) return nested;
    if (o.timeoutMs === 0) {
      // One attempt that never queues, exactly: a 0 ms timer would race the enqueue reply.
      const lease = await this.attempt(o);
      if (lease) return lease;
      throw new LockTimeoutError(`the lock "${this.name}" is busy and timeoutMs is 0 (one attempt, no wait)`);
    }
    // One deadline and one abort listener for the whole call: the subscriber's first connect
    // (node-redis keeps retrying a refused one) and then the wait in the queue.
    const stop = giveUpTrigger(o, this.name);
    try {
      const { session, wakeups } = this.locks.internals();
      await Promise.race([
        wakeups.start().catch((err: unknown) => {
          throw err instanceof FairLockError ? err : new FairLockError(`cannot connect the wake-up subscriber: ${String((err as Error)?.message ?? err)}`, 'REDIS_ERROR', { cause: err });
        }),
        stop.fired,
      ]);
      this.locks.internals(); // closed while connecting?
      const state = session.state(this.name);
      const waiter = new Waiter(state, session.nextWaiterId(o.leaseMs, o.autoRenew), o);
      state.addWaiter(waiter);
      stop.fired.catch((err: Error) => void waiter.giveUp(err));
      void waiter.enqueue();
      return await waiter.promise;
    } finally {
      stop.dispose();
    }
  }

  /** One attempt: a lease if the lock is free and nobody is queued, else null. Never barges. */
  async tryAcquire(options?: Omit<AcquireOptions, 'timeoutMs' | 'onQueued'>): Promise<Lease | null> {
    const o = this.resolve(options);
    const nested = this.nested(o);
    if (nested) return nested;
    return this.attempt(o);
  }

  private async attempt(o: ResolvedAcquire): Promise<Lease | null> {
    const { session } = this.locks.internals();
    const id = session.nextWaiterId(o.leaseMs, o.autoRenew);
    const reply = await session.scripts.acquire(lockKeys(session.options.prefix, this.name), id, session.options.livenessMs, 'try');
    if (reply.kind !== 'granted') return null; // no local state was made, so nothing to clean up
    const state = session.state(this.name);
    const lease = new Lease(state, id, reply.token, reply.exp, reply, o.leaseMs, o.autoRenew);
    try {
      this.locks.internals(); // closed meanwhile: close() did not see this lease, and nothing would renew it
    } catch (err) {
      await state.releaseInRedis(id).catch(() => undefined);
      throw err;
    }
    state.leaseHeld(lease);
    return lease;
  }

  /**
   * Acquires, runs `fn`, and always releases. Inside `fn`, `acquire({ reentrant: true })` of this lock
   * returns a nested lease at once. Rejects with LockLostError if the lease was lost while `fn` ran.
   */
  async using<T>(fn: (lease: Lease) => Promise<T> | T, options?: AcquireOptions): Promise<T> {
    if (typeof fn !== 'function') throw new InvalidArgumentError(`using() needs a function, got ${describe(fn)}`);
    const lease = await this.acquire(options);
    const key = this.key();
    const scope = new Map(held.getStore() ?? []);
    scope.set(key, lease);
    let result: T;
    try {
      result = await held.run(scope, () => fn(lease));
    } catch (err) {
      await lease.release().catch(() => undefined);
      throw err;
    }
    await lease.release();
    return result;
  }

  private resolve(options: AcquireOptions | undefined): ResolvedAcquire {
    const { session } = this.locks.internals();
    // Checked before the spread: spreading a string or null into the defaults would hide it.
    const given = checkObject(options, 'acquire options');
    const o = resolveAcquire(given === undefined ? this.defaults : { ...this.defaults, ...given }, session.options);
    throwIfAborted(o, this.name);
    return o;
  }

  private nested(o: ResolvedAcquire): Lease | undefined {
    if (!o.reentrant) return undefined;
    const lease = held.getStore()?.get(this.key());
    return lease?.held ? lease.nest() : undefined;
  }

  private key(): string {
    return `${this.locks.internals().session.id}\u0000${this.name}`;
  }
}

function throwIfAborted(o: ResolvedAcquire, name: string): void {
  if (o.signal?.aborted) throw new LockAbortedError(`gave up waiting for the lock "${name}": aborted`, { cause: o.signal.reason });
}

/**
 * Rejects `fired` with a LockTimeoutError when `timeoutMs` (counted from now) runs out, or with a
 * LockAbortedError when the signal aborts; `dispose()` stops both.
 */
function giveUpTrigger(o: ResolvedAcquire, name: string): { fired: Promise<never>; dispose(): void } {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const fired = new Promise<never>((_, reject) => {
    if (o.timeoutMs !== undefined) {
      const timeoutMs = o.timeoutMs;
      timer = setTimeout(() => reject(new LockTimeoutError(`timed out after ${timeoutMs} ms waiting for the lock "${name}"`)), timeoutMs);
    }
    onAbort = () => reject(new LockAbortedError(`gave up waiting for the lock "${name}": aborted`, { cause: o.signal?.reason }));
    o.signal?.addEventListener('abort', onAbort, { once: true });
  });
  fired.catch(() => undefined); // it may fire while nothing awaits it; each user attaches its own handler
  return {
    fired,
    dispose() {
      clearTimeout(timer);
      if (onAbort) o.signal?.removeEventListener('abort', onAbort);
    },
  };
}
