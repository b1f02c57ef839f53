import { LockLostError, NotHolderError } from './errors.js';
import { checkDuration } from './options.js';
import { monotonic, type Stamped } from './scripts.js';
import type { LockState } from './session.js';

/** The local monotonic time before which a lease ending at Redis time `exp` is surely still valid. */
export function localDeadline(state: LockState, exp: number, sample: Stamped | undefined, leaseMs: number): number {
  const margin = leaseMs * state.session.options.driftFactor + 2;
  return state.session.scripts.toLocal(exp, sample) - margin;
}

/**
 * A held lock. `token` is the fencing token (strictly increasing per lock name). `signal` is aborted
 * with a LockLostError as soon as the lease can no longer be proven: its local deadline passed, or
 * Redis names another owner.
 *
 * The local deadline is the earliest local time at which Redis's lease can run out (see
 * Scripts.toLocal), minus a margin for clock drift. `signal.aborted` and `signal.throwIfAborted()`
 * compare with the clock when they are read, so a process resumed after a pause sees the loss before
 * its deadline timer gets to run.
 */
const ABORTED_GETTER = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;

export class Lease implements AsyncDisposable {
  readonly name: string;
  readonly token: number;
  /** The waiter id that owns the lock in Redis. */
  readonly id: string;
  /** Local monotonic time at which this process learned of the grant. */
  readonly grantedAt: number;
  private controller: AbortController | undefined;
  private signalCache: AbortSignal | undefined;
  private deadline: number;
  private timer: NodeJS.Timeout | undefined;
  private releasing: Promise<void> | undefined;
  private leaseMs: number;
  private lostError: LockLostError | undefined;

  constructor(
    private readonly state: LockState,
    id: string,
    token: number,
    exp: number,
    sample: Stamped | undefined,
    leaseMs: number,
    readonly autoRenew: boolean,
  ) {
    this.name = state.name;
    this.id = id;
    this.token = token;
    this.leaseMs = leaseMs;
    this.grantedAt = monotonic();
    this.deadline = this.localDeadline(exp, sample);
    this.arm();
  }

  /**
   * Aborted with a LockLostError when the lease is lost. Made on first read: an AbortSignal with the
   * hooks below costs ~10-15 us, on the path of every grant, and most callers never look at it.
   */
  get signal(): AbortSignal {
    return (this.signalCache ??= this.makeSignal());
  }

  private makeSignal(): AbortSignal {
    const controller = (this.controller = new AbortController());
    const signal = controller.signal;
    if (this.lostError) controller.abort(this.lostError);
    const check = () => this.checkDeadline();
    const aborted = ABORTED_GETTER;
    Object.defineProperty(signal, 'aborted', { get: () => (check(), aborted.call(signal)) });
    const throwIfAborted = signal.throwIfAborted;
    Object.defineProperty(signal, 'throwIfAborted', { value: () => (check(), throwIfAborted.call(signal)) });
    return signal;
  }

  /** True until the lease is released or lost. */
  get held(): boolean {
    return !this.releasing && !this.checkDeadline();
  }

  /** The lease length renewals use, in ms. */
  get lengthMs(): number {
    return this.leaseMs;
  }

  /** Remaining local lease time in ms (0 once lost or released). */
  get remainingMs(): number {
    return this.held ? Math.max(0, this.deadline - monotonic()) : 0;
  }

  /** Releases the lock and hands it to the next waiter. Safe to call twice. */
  release(): Promise<void> {
    this.releasing ??= this.doRelease();
    return this.releasing;
  }

  /** Sets the lease to end `ms` from now (default: this lease's length); later renewals use `ms`. */
  async extend(ms: number = this.leaseMs): Promise<void> {
    const value = checkDuration(ms, 'ms');
    if (this.lostError) throw this.lostError;
    if (this.releasing) throw new NotHolderError(`lease on "${this.name}" was released`);
    if (this.checkDeadline()) throw this.lostError!;
    const reply = await this.state.session.scripts.extend(this.state.keys, this.id, value);
    if (reply.kind === 'not-holder') {
      this.lose('Redis no longer names this lease the owner');
      throw this.lostError!;
    }
    // Released or lost while the call was in flight: tracking it again would beat for it for ever.
    if (this.lostError) throw this.lostError;
    if (this.releasing) throw new NotHolderError(`lease on "${this.name}" was released while extend() ran`);
    this.leaseMs = value;
    this.renewed(reply.exp, reply, true);
    this.state.leaseHeld(this); // a shorter lease may need a shorter heartbeat period
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** A reply proved the lease until Redis time `exp`. Never revives a lease whose deadline passed. */
  renewed(exp: number, sample: Stamped, allowShorter = false): void {
    if (this.releasing || this.checkDeadline()) return;
    const next = this.localDeadline(exp, sample);
    if (next > this.deadline || allowShorter) {
      this.deadline = next;
      this.arm();
    }
  }

  /** Marks the lease lost: aborts the signal, stops tracking it and frees the lock in Redis if it can. */
  lose(reason: string, cause?: unknown): void {
    if (this.lostError || this.releasing) return;
    this.lostError = new LockLostError(`lost the lock "${this.name}" (token ${this.token}): ${reason}`, cause === undefined ? undefined : { cause });
    clearTimeout(this.timer);
    this.controller?.abort(this.lostError);
    this.state.leaseGone(this);
    // Ask Redis to hand on in case it still names us (e.g. the local deadline passed first).
    this.state.releaseInRedis(this.id).catch(() => undefined);
    this.state.session.emitLost(this, this.lostError);
  }

  /** For reentrant nesting: a lease that shares this one's token and signal; its release is local. */
  nest(): Lease {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const root = this;
    const nested = Object.create(root) as Lease;
    Object.defineProperty(nested, 'signal', { get: () => root.signal });
    Object.defineProperty(nested, 'extend', { value: (ms?: number) => root.extend(ms) });
    let done: Promise<void> | undefined;
    Object.defineProperty(nested, 'release', {
      value: () => (done ??= root.checkDeadline() ? Promise.reject(root.lostError) : Promise.resolve()),
    });
    Object.defineProperty(nested, Symbol.asyncDispose, { value: () => nested.release() });
    return nested;
  }

  private async doRelease(): Promise<void> {
    clearTimeout(this.timer);
    this.state.leaseGone(this);
    if (this.lostError || this.checkDeadline()) throw this.lostError!;
    const reply = await this.state.releaseInRedis(this.id);
    if (reply.kind === 'not-holder') {
      this.lostError = new LockLostError(`lost the lock "${this.name}" (token ${this.token}) before release: Redis names another owner`);
      this.controller?.abort(this.lostError);
      this.state.session.emitLost(this, this.lostError);
      throw this.lostError;
    }
  }

  /** True (and the signal aborted) once the local deadline has passed. */
  private checkDeadline(): boolean {
    if (this.lostError) return true;
    if (!this.releasing && monotonic() >= this.deadline) this.lose('the lease ran out before it was renewed');
    return this.lostError !== undefined;
  }

  private localDeadline(exp: number, sample: Stamped | undefined): number {
    return localDeadline(this.state, exp, sample, this.leaseMs);
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.checkDeadline(), Math.max(0, this.deadline - monotonic()) + 1);
    this.timer.unref();
  }
}
