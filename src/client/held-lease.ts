import { atDeadline, monotonic, type Stamped } from '../clock.js';
import { LockLostError, NotHolderError } from '../errors.js';
import { checkDuration, type ResolvedOptions } from '../options.js';
import type { LockKeys, Mode } from '../protocol/keys.js';
import type { ReleaseReply, Scripts } from '../protocol/scripts.js';
import type { EventSink } from './event-map.js';
import type { Lease, Request } from './lease.js';

/**
 * One grant, as a lease is made from it: what Redis granted (`token`, `exp`, and the reply that
 * proved `exp`; a wake-up message carries none, then the session's last clock sample is used) and
 * what the caller asked for.
 */
export interface GrantRecord {
  id: string;
  token: number;
  exp: number;
  sample: Stamped | undefined;
  request: Request;
  leaseMs: number;
  autoRenew: boolean;
  /** A quorum holder's handover that came with the grant's wake-up (see QuorumLease's release). */
  handover?: string | undefined;
}

/**
 * What a held lease needs from the per-name state of its session. Two implementations: LockState,
 * and the scripted fake host of test/unit/ (the seam between the lease's logic and the scripts).
 */
export interface LeaseHost {
  readonly name: string;
  readonly keys: LockKeys;
  readonly session: {
    readonly options: Pick<ResolvedOptions, 'driftFactor' | 'livenessMs'>;
    readonly scripts: Pick<Scripts, 'clock' | 'extend' | 'commit'>;
    readonly events: EventSink;
  };
  leaseHeld(lease: HeldLease): void;
  leaseGone(lease: HeldLease): void;
  releaseInRedis(id: string, handover?: string): Promise<ReleaseReply>;
  /** Releases `id` in Redis from the heartbeat (soon), not from the caller's stack. */
  releaseLater(id: string): void;
  /** Releases `id` in Redis from the next regular heartbeat, unless another call released it first. */
  releaseAtBeat(id: string): void;
}

/** The local monotonic time before which a lease ending at Redis time `exp` is surely still valid. */
export function localDeadline(host: LeaseHost, exp: number, sample: Stamped | undefined, leaseMs: number): number {
  return host.session.scripts.clock.toLocal(exp, sample) - (leaseMs * host.session.options.driftFactor + 2);
}

const MODES: Record<Mode, 'read' | 'write' | undefined> = { x: undefined, r: 'read', w: 'write' };
const ABORTED_GETTER = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;

/**
 * A lease's signal: aborted with `lost` at once when given, and whose `aborted` and
 * `throwIfAborted()` run `check` first (it may abort the controller), so that code resumed after a
 * pause sees a loss before the timer that reports it gets to run.
 */
export function checkedSignal(controller: AbortController, lost: Error | undefined, check: () => unknown): AbortSignal {
  const signal = controller.signal;
  if (lost) controller.abort(lost);
  const throwIfAborted = signal.throwIfAborted;
  Object.defineProperty(signal, 'aborted', { get: () => (check(), ABORTED_GETTER.call(signal)) });
  Object.defineProperty(signal, 'throwIfAborted', { value: () => (check(), throwIfAborted.call(signal)) });
  return signal;
}

/**
 * The lease of a grant in Redis. Its local deadline is the earliest local time at which Redis's
 * deadline can pass (see ClockBound), minus a margin for clock drift.
 */
export class HeldLease implements Lease {
  readonly name: string;
  readonly id: string;
  readonly token: number;
  readonly autoRenew: boolean;
  readonly kind: Lease['kind'];
  readonly weight: number;
  readonly mode: 'read' | 'write' | undefined;
  readonly group: string | undefined;
  readonly grantedAt = monotonic();
  /**
   * @internal The handover the wake-up of this grant carried (a quorum holder's grants on the other
   * masters, "index=id" pairs), for the quorum's next acquires; undefined for none.
   */
  readonly handover: string | undefined;
  private leaseMs: number;
  private controller: AbortController | undefined;
  private signalCache: AbortSignal | undefined;
  private deadline: number;
  private timer: { cancel(): void } | undefined;
  private releasing: Promise<void> | undefined;
  private lostError: LockLostError | undefined;

  /** @internal */
  constructor(
    private readonly host: LeaseHost,
    grant: GrantRecord,
  ) {
    this.name = host.name;
    ({ id: this.id, token: this.token, leaseMs: this.leaseMs, autoRenew: this.autoRenew, handover: this.handover } = grant);
    ({ kind: this.kind, weight: this.weight } = grant.request);
    this.mode = MODES[grant.request.mode];
    this.group = grant.request.group;
    this.deadline = localDeadline(host, grant.exp, grant.sample, grant.leaseMs);
    this.arm();
  }

  /**
   * Made on first read (an AbortSignal costs ~10 us on the path of every grant, and most callers
   * never look at it). Its `aborted` and `throwIfAborted()` compare with the clock when read: code
   * resumed after a pause (SIGSTOP, a long GC) sees the loss before the deadline timer gets to run.
   */
  get signal(): AbortSignal {
    if (this.signalCache) return this.signalCache;
    this.controller = new AbortController();
    return (this.signalCache = checkedSignal(this.controller, this.lostError, () => this.checkDeadline()));
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

  /**
   * @internal The local time until which Redis's own word (its last renewal) proved this grant,
   * also after it was found lost; 0 once released. A quorum lease counts a master whose data was lost
   * (a restart empty: Redis no longer names the grant) until then: its restart guard grants nobody
   * else meanwhile (DESIGN §8, rule 9).
   */
  get provenUntil(): number {
    return this.releasing ? 0 : this.deadline;
  }

  release(): Promise<void> {
    this.releasing ??= this.doRelease().then(() => undefined);
    return this.releasing;
  }

  /**
   * @internal A quorum holder's release of its first master (see QuorumLease's release): as release(),
   * passing `handover` for the wake-up of the waiter it grants. True when a wake-up carried it.
   */
  async releaseHandingOver(handover: string): Promise<boolean> {
    let handed = false;
    this.releasing ??= this.doRelease(handover).then((reply) => void (handed = reply.handedOver === true));
    await this.releasing;
    return handed;
  }

  /**
   * @internal Gives the grant up without a release call of its own: the waiter it was handed over to
   * releases it with its acquire here, and the next regular heartbeat releases it if none did.
   */
  handOver(): void {
    if (this.releasing || this.lostError) return;
    this.releasing = Promise.resolve();
    this.timer?.cancel();
    this.host.leaseGone(this);
    this.host.releaseAtBeat(this.id);
  }

  async extend(ms: number = this.leaseMs): Promise<void> {
    const value = checkDuration(ms, 'ms');
    this.throwIfGone();
    const reply = await this.host.session.scripts.extend(this.host.keys, this.id, value);
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

  /**
   * @internal A quorum holder's commit on this master (DESIGN §8, rule 4): "if I am your holder, raise
   * your last token to `token` and renew my lease". True when Redis acknowledged this lease as its
   * holder (the lease is renewed from the reply); false when it does not name it (the lease is lost).
   * A Redis error rejects: the caller counts that master as lost (rule 5).
   */
  async commit(token: number): Promise<boolean> {
    if (!this.held) return false;
    const reply = await this.host.session.scripts.commit(this.host.keys, this.id, token);
    if (reply.kind === 'not-holder') {
      this.markLost('Redis no longer names this lease a holder (quorum commit)', undefined, false);
      return false;
    }
    this.renewed(reply.exp, reply);
    return this.held;
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
    this.host.session.events.fire('lost', this, this.lostError);
  }

  private throwIfGone(when = ''): void {
    if (this.checkDeadline()) throw this.lostError!;
    if (this.releasing) throw new NotHolderError(`lease on "${this.name}" was released${when}`);
  }

  private async doRelease(handover?: string): Promise<ReleaseReply> {
    const releasedAt = monotonic();
    this.timer?.cancel();
    this.host.leaseGone(this);
    if (this.checkDeadline()) throw this.lostError!;
    const reply = await this.host.releaseInRedis(this.id, handover);
    if (reply.kind === 'not-holder') {
      this.markLost('Redis named other holders at release', undefined, false);
      throw this.lostError!;
    }
    const events = this.host.session.events;
    if (events.wants('released')) {
      const { name, id, token, kind, weight, mode, group } = this;
      events.fire('released', { name, id, token, heldMs: releasedAt - this.grantedAt, kind, weight, mode, releasedAt, group });
    }
    return reply;
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
