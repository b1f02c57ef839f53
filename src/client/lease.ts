import type { Kind, Mode } from '../protocol/keys.js';

/** What one acquire asks the engine for. */
export interface Request {
  kind: Kind;
  /** The name's limit: permits of a semaphore, 1 for a lock, 0 for a read-write lock. */
  limit: number;
  weight: number;
  mode: Mode;
  /** A semaphore's cap per group (part of the name's limit), if any. */
  perGroup?: number | undefined;
  /** The group this request takes turns in; undefined = the default group. */
  group?: string | undefined;
}

/**
 * A grant held: of a lock, of permits of a semaphore, or of a read or write side of a read-write
 * lock. `token` is the fencing token (strictly increasing per name, across kinds and modes).
 * `signal` is aborted with a LockLostError as soon as the lease can no longer be proven.
 */
export interface Lease extends AsyncDisposable {
  /** The name the grant is on. */
  readonly name: string;
  /** The fencing token: strictly increasing per name. */
  readonly token: number;
  /** The waiter id Redis knows the grant by ("session:seq:..."). */
  readonly id: string;
  /** Local monotonic time (performance.now()) at which this process learned of the grant. */
  readonly grantedAt: number;
  /** Whether the heartbeat renews this lease. */
  readonly autoRenew: boolean;
  /** What the grant is on: a lock, a semaphore or a read-write lock. */
  readonly kind: Kind;
  /** Permits held (1 for a lock and for either side of a read-write lock). */
  readonly weight: number;
  /** The side of a read-write lock; undefined for a lock or a semaphore. */
  readonly mode: 'read' | 'write' | undefined;
  /** The group the grant was taken in (`acquire({ group })`); undefined for the default group. */
  readonly group: string | undefined;
  /** Aborted with a LockLostError when the lease is lost. */
  readonly signal: AbortSignal;
  /** True until the lease is released or lost. */
  readonly held: boolean;
  /** The lease length renewals use, in ms. */
  readonly lengthMs: number;
  /** Remaining local lease time in ms (0 once lost or released). */
  readonly remainingMs: number;
  /** Releases the grant; the waiters that fit now are granted. Safe to call twice. */
  release(): Promise<void>;
  /** Sets the lease to end `ms` from now (default: the lease's length); later renewals use `ms`. */
  extend(ms?: number): Promise<void>;
}

/**
 * A reentrant acquire inside `using()` of the same name: it shares the grant's token and signal, and
 * its release is local (the grant stays held). `mode` and `weight` say what it covers, never more
 * than the grant holds (FairLock checks that).
 */
export class NestedLease implements Lease {
  private done: Promise<void> | undefined;

  /** @internal */
  constructor(
    private readonly root: Lease,
    readonly mode: 'read' | 'write' | undefined = root.mode,
    readonly weight: number = root.weight,
  ) {}

  get name(): string { return this.root.name; }
  get token(): number { return this.root.token; }
  get id(): string { return this.root.id; }
  get grantedAt(): number { return this.root.grantedAt; }
  get autoRenew(): boolean { return this.root.autoRenew; }
  get kind(): Kind { return this.root.kind; }
  get group(): string | undefined { return this.root.group; }
  get signal(): AbortSignal { return this.root.signal; }
  get held(): boolean { return !this.done && this.root.held; }
  get lengthMs(): number { return this.root.lengthMs; }
  get remainingMs(): number { return this.held ? this.root.remainingMs : 0; }

  release(): Promise<void> {
    // A released outer lease is fine (the scope ended first); a lost one rejects with its error.
    this.done ??= this.root.signal.aborted ? Promise.reject(this.root.signal.reason) : Promise.resolve();
    return this.done;
  }

  extend(ms?: number): Promise<void> {
    return this.root.extend(ms);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}
