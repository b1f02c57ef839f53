import { LockLostError, NotHolderError } from '../errors.js';
import { checkDuration } from '../options.js';
import type { Kind, Mode } from '../protocol/keys.js';
import type { ExtendReply, ReleaseReply } from '../protocol/scripts.js';
import { atDeadline, monotonic, type Stamped } from '../clock.js';
import type { ReleaseSink } from './events.js';

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

/** What a held lease needs from the per-name state of its session. */
export interface LeaseHost {
  readonly name: string;
  readonly driftFactor: number;
  readonly events: ReleaseSink;
  toLocal(redisMs: number, sample?: Stamped): number;
  leaseHeld(lease: HeldLease): void;
  leaseGone(lease: HeldLease): void;
  releaseInRedis(id: string): Promise<ReleaseReply>;
  /** Releases `id` in Redis from the heartbeat (soon), not from the caller's stack. */
  releaseLater(id: string): void;
  extendInRedis(id: string, ms: number): Promise<ExtendReply>;
  emitLost(lease: Lease, err: LockLostError): void;
}

/** The local monotonic time before which a lease ending at Redis time `exp` is surely still valid. */
export function localDeadline(host: LeaseHost, exp: number, sample: Stamped | undefined, leaseMs: number): number {
  return host.toLocal(exp, sample) - (leaseMs * host.driftFactor + 2);
}

const MODES: Record<Mode, 'read' | 'write' | undefined> = { x: undefined, r: 'read', w: 'write' };
const ABORTED_GETTER = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;

/**
 * The lease of a grant in Redis. Its local deadline is the earliest local time at which Redis's
 * deadline can pass (see ClockBound), minus a margin for clock drift.
 */
export class HeldLease implements Lease {
  readonly name: string;
  readonly grantedAt = monotonic();
  readonly mode: 'read' | 'write' | undefined;
  private controller: AbortController | undefined;
  private signalCache: AbortSignal | undefined;
  private deadline: number;
  private timer: { cancel(): void } | undefined;
  private releasing: Promise<void> | undefined;
  private lostError: LockLostError | undefined;

  /** @internal */
  constructor(
    private readonly host: LeaseHost,
    readonly id: string,
    readonly token: number,
    exp: number,
    sample: Stamped | undefined,
    private leaseMs: number,
    readonly autoRenew: boolean,
    readonly kind: Kind,
    readonly weight: number,
    mode: Mode,
  ) {
    this.name = host.name;
    this.mode = MODES[mode];
    this.deadline = localDeadline(host, exp, sample, leaseMs);
    this.arm();
  }

  /**
   * Made on first read (an AbortSignal costs ~10 us on the path of every grant, and most callers
   * never look at it). Its `aborted` and `throwIfAborted()` compare with the clock when read: code
   * resumed after a pause (SIGSTOP, a long GC) sees the loss before the deadline timer gets to run.
   */
  get signal(): AbortSignal {
    if (this.signalCache) return this.signalCache;
    const controller = (this.controller = new AbortController());
    const signal = (this.signalCache = controller.signal);
    if (this.lostError) controller.abort(this.lostError);
    const throwIfAborted = signal.throwIfAborted;
    Object.defineProperty(signal, 'aborted', { get: () => (this.checkDeadline(), ABORTED_GETTER.call(signal)) });
    Object.defineProperty(signal, 'throwIfAborted', { value: () => (this.checkDeadline(), throwIfAborted.call(signal)) });
    return signal;
  }

  get held(): boolean {
    return !this.releasing && !this.checkDeadline();
  }

  get lengthMs(): number {
    return this.leaseMs;
  }

  get remainingMs(): number {
    return this.held ? Math.max(0, this.deadline - monotonic()) : 0;
  }

  release(): Promise<void> {
    this.releasing ??= this.doRelease();
    return this.releasing;
  }

  async extend(ms: number = this.leaseMs): Promise<void> {
    const value = checkDuration(ms, 'ms');
    this.throwIfGone();
    const reply = await this.host.extendInRedis(this.id, value);
    if (reply.kind === 'not-holder') this.markLost('Redis no longer names this lease a holder');
    // Released or lost while the call was in flight: tracking it again would beat for it for ever.
    this.throwIfGone(' while extend() ran');
    if (reply.kind !== 'extended') return;
    this.leaseMs = value;
    this.renewed(reply.exp, reply, true);
    this.host.leaseHeld(this); // a shorter lease may need a shorter heartbeat period
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** @internal A reply proved the lease until Redis time `exp`. Never revives a lease whose deadline passed. */
  renewed(exp: number, sample: Stamped, allowShorter = false): void {
    if (this.releasing || this.checkDeadline()) return;
    const next = localDeadline(this.host, exp, sample, this.leaseMs);
    if (next > this.deadline || allowShorter) {
      this.deadline = next;
      this.arm();
    }
  }

  /**
   * @internal The one way a lease is lost: aborts the signal, stops tracking it, tells the 'lost'
   * listeners, and has the heartbeat release it in Redis in case Redis still names it (a local
   * deadline passes before Redis's). `release` false: Redis is known not to name it any more.
   */
  markLost(reason: string, cause?: unknown, release = true): void {
    if (this.lostError || (this.releasing && release)) return;
    this.lostError = new LockLostError(`lost the lock "${this.name}" (token ${this.token}): ${reason}`, cause === undefined ? undefined : { cause });
    this.timer?.cancel();
    this.controller?.abort(this.lostError);
    this.host.leaseGone(this);
    if (release) this.host.releaseLater(this.id);
    this.host.emitLost(this, this.lostError);
  }

  private throwIfGone(when = ''): void {
    if (this.checkDeadline()) throw this.lostError!;
    if (this.releasing) throw new NotHolderError(`lease on "${this.name}" was released${when}`);
  }

  private async doRelease(): Promise<void> {
    const releasedAt = monotonic();
    this.timer?.cancel();
    this.host.leaseGone(this);
    if (this.checkDeadline()) throw this.lostError!;
    const reply = await this.host.releaseInRedis(this.id);
    if (reply.kind === 'not-holder') {
      this.markLost('Redis named other holders at release', undefined, false);
      throw this.lostError!;
    }
    const events = this.host.events;
    if (events.wants('released')) {
      const { name, id, token, kind, weight, mode } = this;
      events.fire('released', { name, id, token, heldMs: releasedAt - this.grantedAt, kind, weight, mode, releasedAt });
    }
  }

  /** True (and the lease marked lost) once the local deadline has passed. */
  private checkDeadline(): boolean {
    if (!this.lostError && !this.releasing && monotonic() >= this.deadline) this.markLost('the lease ran out before it was renewed');
    return this.lostError !== undefined;
  }

  private arm(): void {
    this.timer?.cancel();
    // A timer Node runs early waits out the rest (atDeadline): a holder cut off from Redis has
    // nothing else that reads the clock, and was once never told.
    this.timer = atDeadline(this.deadline, () => this.checkDeadline(), true);
  }
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
