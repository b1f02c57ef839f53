import { AsyncLocalStorage } from 'node:async_hooks';
import type { Session } from '../client/session.js';
import { HeldLease, NestedLease, type Lease } from '../client/lease.js';
import { eventMode } from '../client/events.js';
import { Waiter, type Grant, type Request } from '../client/waiter.js';
import type { LockState } from '../client/lock-state.js';
import { atDeadline, monotonic } from '../clock.js';
import type { Wakeups } from '../client/wakeups.js';
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
import { lockKeys } from '../protocol/keys.js';

/** @internal The parts of a FairLocks instance a handle uses; throws ClosedError once it is closed. */
export type Engine = () => { session: Session; wakeups: Wakeups };

/**
 * What a `using()` scope holds on a name: the grant itself (never a nested lease: a scope opened by a
 * nested lease holds what its enclosing scope holds) and the limit it was granted with.
 */
interface ScopeGrant {
  readonly grant: Lease;
  readonly limit: number;
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
    protected readonly spec: Omit<Request, 'weight'>,
  ) {}

  /** Waits in FIFO order and resolves with the lease. */
  async acquire(options?: AcquireOptions): Promise<Lease> {
    const { o, request } = this.resolve(options);
    const nested = this.nested(o, request);
    if (nested) return nested;
    if (o.timeoutMs === 0) {
      // The call's timeoutMs bounds its wait for replicas too, and 0 ms can confirm nothing: refused
      // before anything is sent, instead of a grant taken only to be released.
      if (o.durability) {
        throw new InvalidArgumentError(
          `timeoutMs: 0 leaves no time to confirm a grant of ${this.what} on ${o.durability.replicas} replicas (durability): use tryAcquire(), a timeoutMs above 0, or durability: { replicas: 0 }`,
        );
      }
      // One attempt that never queues, exactly: a 0 ms timer would race the enqueue reply.
      const lease = await this.attempt(o, request);
      if (lease) return lease;
      throw new LockTimeoutError(`${this.what} is busy and timeoutMs is 0 (one attempt, no wait)`);
    }
    // One deadline and one abort listener for the whole call: the subscriber's first connect
    // (node-redis keeps retrying a refused one) and then the wait in the queue.
    const startedAt = monotonic();
    const stop = giveUpTrigger(o, this.what);
    try {
      const { session, wakeups } = this.engine();
      await Promise.race([
        wakeups.start().catch((err: unknown) => {
          throw asFairLockError(err, 'cannot connect the wake-up subscriber');
        }),
        stop.fired,
      ]);
      this.engine(); // closed while connecting?
      const state = session.state(this.name);
      const waiter = new Waiter(state, session.nextWaiterId(o.leaseMs, o.autoRenew, request.weight, request.mode), o, request, startedAt);
      state.addWaiter(waiter);
      stop.fired.catch((err: Error) => void waiter.giveUp(err));
      void waiter.enqueue();
      return await waiter.promise;
    } finally {
      stop.dispose();
    }
  }

  /** One attempt: a lease if the request fits and nobody is queued, else null. Never barges. */
  async tryAcquire(options?: Omit<AcquireOptions, 'timeoutMs' | 'onQueued'>): Promise<Lease | null> {
    const { o, request } = this.resolve(options);
    const nested = this.nested(o, request);
    if (nested) return nested;
    return this.attempt(o, request);
  }

  private async attempt(o: ResolvedAcquire, request: Request): Promise<Lease | null> {
    const { session } = this.engine();
    const startedAt = monotonic();
    const id = session.nextWaiterId(o.leaseMs, o.autoRenew, request.weight, request.mode);
    const keys = lockKeys(session.options.prefix, this.name);
    const reply = await session.scripts.acquire(keys, id, session.options.livenessMs, 'try', request.kind, request.limit);
    if (reply.kind === 'refused') throw new LimitMismatchError(this.name, reply.current, request);
    if (reply.kind !== 'granted') return null; // no local state was made, so nothing to clean up
    const state = session.state(this.name);
    try {
      this.engine(); // closed meanwhile: close() did not see this grant, and nothing would renew it
    } catch (err) {
      await state.releaseInRedis(id).catch(() => undefined);
      state.settleIfIdle();
      throw err;
    }
    const grant = { token: reply.token, exp: reply.exp, sample: reply };
    if (o.durability) return this.confirmAttempt(state, o, request, id, startedAt, grant);
    const lease = new HeldLease(state, id, reply.token, reply.exp, reply, o.leaseMs, o.autoRenew, request.kind, request.weight, request.mode);
    state.leaseHeld(lease);
    if (session.events.wants('granted')) {
      const { token, kind, weight, mode } = lease;
      session.events.fire('granted', { name: this.name, id, token, waitedMs: lease.grantedAt - startedAt, kind, weight, mode });
    }
    return lease;
  }

  /**
   * tryAcquire's durable grant goes through a Waiter, as acquire's does: one confirmation path, where
   * the call's signal and close() (which gives up every waiter) end the wait for replicas, the caller
   * gets the typed error at once and the grant is released (see Waiter.confirm and giveUp).
   */
  private async confirmAttempt(state: LockState, o: ResolvedAcquire, request: Request, id: string, startedAt: number, grant: Grant): Promise<Lease> {
    const waiter = new Waiter(state, id, o, request, startedAt);
    state.addWaiter(waiter);
    // No timeoutMs here: tryAcquire takes none, and timeoutMs: 0 with durability is refused.
    const stop = giveUpTrigger({ ...o, timeoutMs: undefined }, this.what);
    try {
      stop.fired.catch((err: Error) => void waiter.giveUp(err));
      waiter.tookAtOnce(grant);
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
    if (!(lease instanceof NestedLease)) scope.set(this.scopeKey(), { grant: lease, limit: this.spec.limit });
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
    const { session } = this.engine();
    // Checked before the spread: spreading a string or null into the defaults would hide it.
    const given = checkObject(options, 'acquire options');
    const merged = given === undefined ? this.defaults : { ...this.defaults, ...given };
    const o = resolveAcquire(merged, session.options, this.spec.kind === 'semaphore' ? this.spec.limit : undefined);
    if (o.signal?.aborted) throw new LockAbortedError(`gave up waiting for ${this.what}: aborted`, { cause: o.signal.reason });
    return { o, request: { ...this.spec, weight: o.weight } };
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
    const { grant, limit } = scope;
    if (request.kind !== grant.kind || request.limit !== limit) throw new LimitMismatchError(this.name, `${grant.kind} ${limit}`, request);
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
    return `${this.engine().session.id}\u0000${this.name}`;
  }
}

/**
 * Rejects `fired` with a LockTimeoutError when `timeoutMs` (counted from now) runs out, or with a
 * LockAbortedError when the signal aborts; `dispose()` stops both.
 */
function giveUpTrigger(o: ResolvedAcquire, what: string): { fired: Promise<never>; dispose(): void } {
  let timer: { cancel(): void } | undefined;
  let onAbort: (() => void) | undefined;
  const fired = new Promise<never>((_, reject) => {
    if (o.timeoutMs !== undefined) {
      const timeoutMs = o.timeoutMs;
      // Never before timeoutMs by the clock (atDeadline): a call never gives up, nor reports a
      // wait, shorter than the timeoutMs it was given.
      timer = atDeadline(monotonic() + timeoutMs, () => reject(new LockTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`)));
    }
    onAbort = () => reject(new LockAbortedError(`gave up waiting for ${what}: aborted`, { cause: o.signal?.reason }));
    // Aborted already (e.g. while tryAcquire's attempt ran): an 'abort' listener would never hear it.
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
  });
  fired.catch(() => undefined); // it may fire while nothing awaits it; each user attaches its own handler
  return {
    fired,
    dispose() {
      timer?.cancel();
      if (onAbort) o.signal?.removeEventListener('abort', onAbort);
    },
  };
}
