import { AsyncLocalStorage } from 'node:async_hooks';
import { eventMode } from '../client/events.js';
import { NestedLease, type Lease, type Request } from '../client/lease.js';
import type { Session } from '../client/session.js';
import { Waiter } from '../client/waiter.js';
import { atDeadline, monotonic } from '../clock.js';
import {
  asFairLockError,
  InvalidArgumentError,
  LimitMismatchError,
  LockAbortedError,
  LockTimeoutError,
  WouldDeadlockError,
} from '../errors.js';
import {
  checkObject,
  describe,
  resolveAcquire,
  type AcquireOptions,
  type ResolvedAcquire,
  type SemaphoreAcquireOptions,
} from '../options.js';

/** @internal The session of a FairLocks instance, as a handle reaches it; throws ClosedError once it is closed. */
export type Engine = () => Session;

/**
 * What a `using()` scope holds on a name: the grant itself (never a nested lease: a scope opened by a
 * nested lease holds what its enclosing scope holds) and the limit it was granted with.
 */
interface ScopeGrant {
  readonly grant: Lease;
  readonly limit: number;
  readonly perGroup: number | undefined;
}

/** The grants held by the `using()` callbacks the current async context runs in, by session and name. */
const held = new AsyncLocalStorage<ReadonlyMap<string, ScopeGrant>>();

/**
 * A handle on one name: a lock, one side of a read-write lock, or (as FairSemaphore) a semaphore.
 * Cheap: no I/O until acquire.
 */
export class FairLock {
  /** @internal */
  constructor(
    private readonly engine: Engine,
    /** The name this handle locks. */
    readonly name: string,
    private readonly defaults: SemaphoreAcquireOptions,
    /** @internal */
    protected readonly spec: Omit<Request, 'weight' | 'group'>,
  ) {}

  /** Waits in FIFO order and resolves with the lease. */
  async acquire(options?: AcquireOptions): Promise<Lease> {
    const { o, request } = this.resolve(options);
    const nested = this.nested(o, request);
    if (nested) return nested;
    if (o.timeoutMs === 0 && o.durability) {
      // The call's timeoutMs bounds its wait for replicas too, and 0 ms can confirm nothing: refused
      // before anything is sent, instead of a grant taken only to be released.
      throw new InvalidArgumentError(
        `timeoutMs: 0 leaves no time to confirm a grant of ${this.what} on ${o.durability.replicas} replicas (durability): use tryAcquire(), a timeoutMs above 0, or durability: { replicas: 0 }`,
      );
    }
    // timeoutMs 0: one attempt that never queues, exactly (a 0 ms timer would race the enqueue reply).
    const lease = await this.ask(o, request, o.timeoutMs === 0 ? 'try' : 'wait');
    if (lease) return lease;
    throw new LockTimeoutError(`${this.what} is busy and timeoutMs is 0 (one attempt, no wait)`);
  }

  /** One attempt: a lease if the request fits and nobody is queued, else null. Never barges. */
  async tryAcquire(options?: Omit<AcquireOptions, 'timeoutMs' | 'onQueued'>): Promise<Lease | null> {
    const { o, request } = this.resolve(options);
    return this.nested(o, request) ?? this.ask(o, request, 'try');
  }

  /**
   * The one way to a lease: a Waiter runs the acquire script in `mode` and takes the grant (see
   * Waiter). 'wait' queues, bounded by timeoutMs and the signal, and needs the wake-up subscriber
   * (a node-redis client keeps retrying a refused first connect: the same deadline bounds that);
   * 'try' resolves null when the name is busy, starts no subscriber and arms no timer, and its
   * signal reaches only a durable grant's confirmation on replicas. close() gives up either.
   */
  private async ask(o: ResolvedAcquire, request: Request, mode: 'wait' | 'try'): Promise<Lease | null> {
    const startedAt = monotonic();
    const stop = mode === 'wait' ? giveUpTrigger(o.timeoutMs, o.signal, this.what) : giveUpTrigger(undefined, o.durability && o.signal, this.what);
    try {
      const session = this.engine();
      if (mode === 'wait') {
        await Promise.race([
          session.wakeups.start().catch((err: unknown) => {
            throw asFairLockError(err, 'cannot connect the wake-up subscriber');
          }),
          stop.fired,
        ]);
        this.engine(); // closed while connecting?
      }
      const state = session.state(this.name);
      const waiter = new Waiter(state, session.nextWaiterId(o.leaseMs, o.autoRenew, request.weight, request.mode), o, request, mode, startedAt);
      state.addWaiter(waiter);
      stop.fired.catch((err: Error) => void waiter.giveUp(err));
      void waiter.enqueue();
      return await waiter.promise;
    } finally {
      stop.dispose();
    }
  }

  /**
   * Acquires, runs `fn`, and always releases. Inside `fn`, `acquire({ reentrant: true })` of this
   * name returns a nested lease at once. Rejects with LockLostError if the lease was lost while `fn` ran.
   */
  async using<T>(fn: (lease: Lease) => Promise<T> | T, options?: AcquireOptions): Promise<T> {
    if (typeof fn !== 'function') throw new InvalidArgumentError(`using() needs a function, got ${describe(fn)}`);
    const lease = await this.acquire(options);
    const scope = new Map(held.getStore() ?? []);
    // A nested lease leaves the scope as it is: the enclosing scope's grant is still what is held.
    if (!(lease instanceof NestedLease)) scope.set(this.scopeKey(), { grant: lease, limit: this.spec.limit, perGroup: this.spec.perGroup });
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

  private resolve(options: AcquireOptions | undefined): { o: ResolvedAcquire; request: Request } {
    const session = this.engine();
    // Checked before the spread: spreading a string or null into the defaults would hide it.
    const given = checkObject(options, 'acquire options');
    const merged = given === undefined ? this.defaults : { ...this.defaults, ...given };
    const o = resolveAcquire(merged, session.options, this.spec.kind === 'semaphore' ? this.spec.limit : undefined);
    if (o.group !== undefined && this.spec.kind === 'rw') {
      throw new InvalidArgumentError(`options.group does not apply to a read-write lock (${this.what}): groups take turns on a lock or a semaphore`);
    }
    const { perGroup } = this.spec;
    if (perGroup !== undefined && o.weight > perGroup) {
      throw new InvalidArgumentError(`options.weight (${o.weight}) is more than the semaphore's perGroup (${perGroup}): it could never be granted`);
    }
    if (o.signal?.aborted) throw new LockAbortedError(`gave up waiting for ${this.what}: aborted`, { cause: o.signal.reason });
    return { o, request: { ...this.spec, weight: o.weight, group: o.group } };
  }

  /**
   * A lease to return at once from the grant the current `using()` scope holds on this name: a nested
   * one when asked (`reentrant`) or when a read is asked inside a write (a downgrade: the write covers
   * it). It must be what the scope holds: another kind or limit is refused (LIMIT_MISMATCH, as Redis
   * refuses a busy name), and so is a weight above the scope's, never answered with a lease for less.
   * A write asked inside a read would wait for that read for ever: refused. Without `reentrant`, any
   * other request is an ordinary acquire that queues, as a plain lock's does (README, Reentrancy).
   */
  private nested(o: ResolvedAcquire, request: Request): Lease | undefined {
    const scope = held.getStore()?.get(this.scopeKey());
    if (!scope?.grant.held) return undefined;
    const { grant, limit, perGroup } = scope;
    if (request.kind !== grant.kind || request.limit !== limit || request.perGroup !== perGroup) {
      throw new LimitMismatchError(this.name, `${grant.kind} ${limit}${perGroup === undefined ? '' : ` ${perGroup}`}`, request);
    }
    const mode = eventMode(request.mode);
    if (mode === 'write' && grant.mode === 'read') {
      throw new WouldDeadlockError(`a write of "${this.name}" was asked inside a read of it: it would wait for that read for ever`);
    }
    if (mode === 'read' && grant.mode === 'write') return new NestedLease(grant, 'read', 1);
    if (!o.reentrant) return undefined;
    if (request.weight > grant.weight) {
      throw new InvalidArgumentError(
        `a reentrant acquire of ${this.what} asked for ${request.weight} permits, but its using() scope holds ${grant.weight}: ` +
          'a nested lease takes no permits of its own (ask at most the outer weight, or take the permits in the outer acquire)',
      );
    }
    return new NestedLease(grant, mode, request.weight);
  }

  /** For messages: 'the lock "x"', 'the semaphore "x"', 'the read side of "x"'. */
  private get what(): string {
    const { kind, mode } = this.spec;
    if (kind === 'rw') return `the ${mode === 'w' ? 'write' : 'read'} side of "${this.name}"`;
    return `the ${kind} "${this.name}"`;
  }

  private scopeKey(): string {
    return `${this.engine().id}\u0000${this.name}`;
  }
}

/**
 * Rejects `fired` with a LockTimeoutError when `timeoutMs` (counted from now) runs out, or with a
 * LockAbortedError when `signal` aborts; `dispose()` stops both.
 */
function giveUpTrigger(timeoutMs: number | undefined, signal: AbortSignal | undefined, what: string): { fired: Promise<never>; dispose(): void } {
  let timer: { cancel(): void } | undefined;
  let onAbort: (() => void) | undefined;
  const fired = new Promise<never>((_, reject) => {
    if (timeoutMs !== undefined) {
      // Never before timeoutMs by the clock (atDeadline): a call never gives up, nor reports a
      // wait, shorter than the timeoutMs it was given.
      timer = atDeadline(monotonic() + timeoutMs, () => reject(new LockTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`)));
    }
    onAbort = () => reject(new LockAbortedError(`gave up waiting for ${what}: aborted`, { cause: signal?.reason }));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  fired.catch(() => undefined); // it may fire while nothing awaits it; each user attaches its own handler
  return {
    fired,
    dispose() {
      timer?.cancel();
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    },
  };
}
