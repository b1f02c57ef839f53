import type { Lease } from '../client/lease.js';
import { InvalidArgumentError, LockTimeoutError } from '../errors.js';
import { checkObject, describe, type AcquireOptions } from '../options.js';

/** Options of one quorum `acquire`, `tryAcquire` or `using` call. */
export type QuorumAcquireOptions = Pick<AcquireOptions, 'timeoutMs' | 'signal' | 'leaseMs' | 'autoRenew' | 'onQueued'>;

/** @internal What a handle asks its quorum for: one acquire, waiting ('wait') or not ('try'). */
export type QuorumAsk = (name: string, options: QuorumAcquireOptions, mode: 'wait' | 'try') => Promise<Lease | null>;

/** Options of the single-node lock that a quorum lock does not take. */
const NOT_HERE: Record<string, string> = {
  group: 'groups take turns on one Redis; the chain keeps master 0\'s FIFO order only',
  durability: 'the masters are independent: a majority of them keeps the grant, not replicas',
  reentrant: 'a quorum lease is not reentrant',
  weight: 'a quorum lock is exclusive (no semaphore over a quorum)',
};

/**
 * A handle on one exclusive lock over a quorum of independent masters (`quorum.lock(name)`). No I/O
 * until acquire. Its leases are {@link Lease}s whose token is the highest token of the masters
 * they hold.
 */
export class QuorumLock {
  /** @internal */
  constructor(
    private readonly ask: QuorumAsk,
    /** The name this handle locks. */
    readonly name: string,
    private readonly defaults: QuorumAcquireOptions,
  ) {}

  /**
   * Climbs the chain (DESIGN §8): waits in FIFO order on each master in turn until it holds a
   * majority; resolves with the lease. Rejects with LockTimeoutError after `timeoutMs` (the whole
   * climb; 0: one attempt), LockAbortedError when `signal` aborts, QuorumLostError when a majority
   * could not be held through `maxRestarts` restarts.
   */
  async acquire(options?: QuorumAcquireOptions): Promise<Lease> {
    const o = this.options(options);
    const lease = await this.ask(this.name, o, o.timeoutMs === 0 ? 'try' : 'wait');
    if (lease) return lease;
    throw new LockTimeoutError(`the quorum lock "${this.name}" is busy and timeoutMs is 0 (one attempt, no wait)`);
  }

  /** One attempt on each master in order, never queuing: a lease if a majority was free (and nobody queued), else null. */
  tryAcquire(options?: Omit<QuorumAcquireOptions, 'timeoutMs' | 'onQueued'>): Promise<Lease | null> {
    return this.ask(this.name, this.options(options), 'try');
  }

  /** Acquires, runs `fn`, and always releases; rejects with LockLostError if the lease was lost while `fn` ran. */
  async using<T>(fn: (lease: Lease) => Promise<T> | T, options?: QuorumAcquireOptions): Promise<T> {
    if (typeof fn !== 'function') throw new InvalidArgumentError(`using() needs a function, got ${describe(fn)}`);
    const lease = await this.acquire(options);
    let result: T;
    try {
      result = await fn(lease);
    } catch (err) {
      await lease.release().catch(() => undefined);
      throw err;
    }
    await lease.release();
    return result;
  }

  private options(options: QuorumAcquireOptions | undefined): QuorumAcquireOptions {
    const given = checkObject(options, 'acquire options');
    for (const key of Object.keys(given ?? {})) {
      const why = NOT_HERE[key];
      if (why !== undefined && (given as Record<string, unknown>)[key] !== undefined) throw new InvalidArgumentError(`options.${key} does not apply to a quorum lock: ${why}`);
    }
    return given === undefined ? this.defaults : { ...this.defaults, ...given };
  }
}
