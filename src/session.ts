import { randomBytes } from 'node:crypto';
import { Mutex } from 'async-mutex';
import { debug } from './debug.js';
import { lockKeys, type LockKeys } from './keys.js';
import type { Lease } from './lease.js';
import type { ResolvedOptions } from './options.js';
import { badKeyError, type Scripts } from './scripts.js';
import type { Waiter } from './waiter.js';

/**
 * The session of one FairLocks instance: a random id, the locks it waits on or holds, and one
 * heartbeat per such lock (per lock, not per waiter, so Redis load does not grow with waiters).
 */
export class Session {
  readonly id = randomBytes(8).toString('hex');
  readonly locks = new Map<string, LockState>();
  /** Waiters by id, so that a wake-up message finds its promise. */
  readonly waiters = new Map<string, Waiter>();
  private seq = 0;
  private stopped = false;

  constructor(
    readonly scripts: Scripts,
    readonly options: ResolvedOptions,
    readonly emitLost: (lease: Lease, err: Error) => void,
  ) {}

  /** "session:seq:leaseMs:renew": the release script reads the lease and the channel from it. */
  nextWaiterId(leaseMs: number, autoRenew: boolean): string {
    return `${this.id}:${(++this.seq).toString(36)}:${leaseMs}:${autoRenew ? 1 : 0}`;
  }

  state(name: string): LockState {
    let state = this.locks.get(name);
    if (!state) {
      state = new LockState(this, name);
      this.locks.set(name, state);
    }
    return state;
  }

  /**
   * A wake-up "waiterId token exp" from the subscriber. Unknown ids are stale and ignored, and so is
   * anything malformed: it arrives from the network and must never throw into the subscriber. A
   * grant it carries that never reaches a waiter is found by the next heartbeat.
   */
  onWake(message: unknown): void {
    try {
      const text = typeof message === 'string' ? message : Buffer.isBuffer(message) ? message.toString() : undefined;
      const m = text === undefined ? null : /^(\S+) (\d+) (\d+)$/.exec(text);
      const waiter = m ? this.waiters.get(m[1]!) : undefined;
      debug('wake %s %s', text ?? typeof message, waiter ? '' : '(no such waiter)');
      waiter?.grant({ token: Number(m![2]), exp: Number(m![3]) });
    } catch (err) {
      debug('wake-up ignored: %s', (err as Error)?.message);
    }
  }

  /** After the subscriber reconnects: a grant published meanwhile was lost, so look now. */
  beatAll(): void {
    for (const state of this.locks.values()) void state.beat();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  stop(): void {
    this.stopped = true;
    for (const state of this.locks.values()) state.stopTimer();
  }
}

/** What one session has on one lock: its waiters, its leases, and the heartbeat that serves them. */
export class LockState {
  readonly keys: LockKeys;
  readonly waiters = new Map<string, Waiter>();
  readonly leases = new Set<Lease>();
  /**
   * Ids of leases given up (released or lost) whose release script did not get through: the
   * heartbeat goes on for them and releases them in Redis ("beat until released"), so a grant its
   * process no longer wants never outlives the next beat.
   */
  private readonly unreleased = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private timerPeriod = 0;
  /** One heartbeat in flight per lock; a beat after a reconnect waits for the regular one. */
  private readonly beating = new Mutex();
  /** Redis time until which the last reply that refreshed this session on this lock proves it alive. */
  private liveUntil = 0;

  constructor(readonly session: Session, readonly name: string) {
    this.keys = lockKeys(session.options.prefix, name);
  }

  addWaiter(waiter: Waiter): void {
    this.waiters.set(waiter.id, waiter);
    this.session.waiters.set(waiter.id, waiter);
    this.schedule();
  }

  waiterGone(waiter: Waiter): void {
    this.waiters.delete(waiter.id);
    this.session.waiters.delete(waiter.id);
    this.settle();
  }

  leaseHeld(lease: Lease): void {
    this.leases.add(lease);
    this.session.locks.set(this.name, this);
    // a short auto-renewed lease may need a shorter period than the running timer's
    if (this.timer && this.period() < this.timerPeriod) this.stopTimer();
    this.schedule();
  }

  leaseGone(lease: Lease): void {
    this.leases.delete(lease);
    this.settle();
  }

  /** Runs the release script for `id`; if it fails, the heartbeat retries it. */
  releaseInRedis(id: string): ReturnType<Scripts['release']> {
    return this.orRetry(id, this.session.scripts.release(this.keys, id));
  }

  /** Runs the cancel script for `id`; if it fails, the heartbeat retries it (as a release). */
  cancelInRedis(id: string): ReturnType<Scripts['cancel']> {
    return this.orRetry(id, this.session.scripts.cancel(this.keys, id));
  }

  private async orRetry<T>(id: string, call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (err) {
      this.retryRelease(id);
      throw err;
    }
  }

  /** Hands `id` to the state the session now has for this name (this one, or a newer one if this went idle). */
  private retryRelease(id: string): void {
    if (this.session.isStopped) return;
    const current = this.session.state(this.name);
    current.unreleased.add(id);
    current.schedule();
  }

  stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One heartbeat: renew, detect loss, recover lost wake-ups, re-enter after a lapse. */
  async beat(): Promise<void> {
    await this.beating.runExclusive(async () => {
      if (this.idle) return;
      let reply;
      try {
        const held = [...new Set([...this.leases].map((l) => l.id))];
        const dropped = [...this.unreleased];
        reply = await this.session.scripts.heartbeat(this.keys, this.session.id, this.session.options.livenessMs, [...held, ...dropped.map((id) => `-${id}`)]);
        // The script released each of them if Redis still named it: either way it is gone now.
        for (const id of dropped) this.unreleased.delete(id);
        if (dropped.length > 0) this.settle();
      } catch (err) {
        debug('heartbeat %s failed: %s', this.name, (err as Error).message);
        // A key of the wrong type will not heal by retrying: fail this lock's leases and waits now
        // (naming the key) instead of letting leases run out silently and waits hang until timeout.
        if ((err as { code?: unknown })?.code === 'BAD_KEY') {
          this.unreleased.clear(); // nothing can be released through a bad key: do not pile them up
          for (const lease of [...this.leases]) lease.lose((err as Error).message, err);
          for (const waiter of [...this.waiters.values()]) void waiter.giveUp(err as Error);
        }
        return;
      }
      const lapsed = this.refreshed(reply.now, reply.lapsed);
      const owner = reply.owner;
      for (const lease of [...this.leases]) {
        if (owner?.id === lease.id) lease.renewed(owner.exp, reply);
        // Only a beat sent after we learned of the grant can prove the grant is gone.
        else if (lease.grantedAt < reply.sentAt) lease.lose(owner ? 'Redis names another owner' : 'Redis has no owner for it');
      }
      if (reply.badQueue) {
        const err = badKeyError(reply.badQueue, 'WRONGTYPE: not a sorted set');
        for (const waiter of [...this.waiters.values()]) void waiter.giveUp(err);
        return;
      }
      if (owner) this.waiters.get(owner.id)?.grant({ token: owner.token, exp: owner.exp, sample: reply });
      if (lapsed) await this.reenter();
    });
  }

  /**
   * A script refreshed this session's liveness on this lock at Redis time `now`: did the session
   * lapse before it? Redis says so only to the first run of the script; a repeated run (a retry
   * after a dropped connection, or ioredis resending by itself) finds the session fresh. So the
   * client also counts a lapse when `now` is past what the previous reply proved. A false "lapsed"
   * costs one idempotent acquire per waiter; a missed one left a reaped waiter waiting for ever.
   */
  refreshed(now: number, redisSaysLapsed: boolean): boolean {
    const lapsed = redisSaysLapsed || (this.liveUntil > 0 && now >= this.liveUntil);
    this.liveUntil = Math.max(this.liveUntil, now + this.session.options.livenessMs);
    return lapsed;
  }

  /** After a lapse: every waiter (but `except`) runs the idempotent acquire again, re-entering if reaped. */
  async reenter(except?: Waiter): Promise<void> {
    const others = [...this.waiters.values()].filter((w) => w !== except);
    if (others.length === 0) return;
    debug('session lapsed on %s: %d waiters re-enter', this.name, others.length);
    await Promise.all(others.map((w) => w.enqueue()));
  }

  private get idle(): boolean {
    return this.waiters.size === 0 && this.leases.size === 0 && this.unreleased.size === 0;
  }

  private period(): number {
    let ms = this.session.options.heartbeatMs;
    for (const lease of this.leases) if (lease.autoRenew) ms = Math.min(ms, Math.max(5, Math.floor(lease.lengthMs / 3)));
    return ms;
  }

  private schedule(): void {
    if (this.timer || this.idle || this.session.isStopped) return;
    this.timerPeriod = this.period();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.beat().finally(() => this.schedule());
    }, this.timerPeriod);
    this.timer.unref();
  }

  private settle(): void {
    if (!this.idle) return;
    this.stopTimer();
    if (this.session.locks.get(this.name) === this) this.session.locks.delete(this.name);
  }
}
