import { Mutex } from 'async-mutex';
import { debug } from '../debug.js';
import type { ResolvedDurability, ResolvedOptions } from '../options.js';
import { lockKeys, type LockKeys } from '../protocol/keys.js';
import { badKeyError, type Beat, type Durability, type Scripts } from '../protocol/scripts.js';
import { WaitNotSent } from '../redis/wait-pool.js';
import type { EventSink } from './event-map.js';
import type { RedisOperation } from './events.js';
import type { HeldLease } from './held-lease.js';
import type { Waiter, WaiterHost } from './waiter.js';
import type { Wakeups } from './wakeups.js';

/**
 * What the per-name state needs from its session. Two implementations: Session, and the scripted
 * fake session of test/unit/lock-state.test.ts (the seam between the heartbeat's logic and the scripts).
 */
export interface SessionHost {
  readonly id: string;
  readonly options: ResolvedOptions;
  readonly scripts: Pick<Scripts, 'clock' | 'acquire' | 'heartbeat' | 'release' | 'cancel' | 'extend' | 'commit'>;
  /** The wake-up subscriber: on a cluster, a name's shard channel is subscribed while the session waits on it. */
  readonly wakeups: Pick<Wakeups, 'sharded' | 'watch' | 'unwatch' | 'refresh'>;
  readonly events: EventSink;
  readonly stopped: boolean;
  /** Waiters by id, so that a wake-up message finds its promise. */
  readonly waiters: Map<string, Waiter>;
  readonly locks: Map<string, LockState>;
  /** Give-ups' cancels still out (a caller hears before a slow one lands): close() waits for them. */
  readonly cancels: Set<Promise<void>>;
  state(name: string): LockState;
}

/** A grant or wait given up whose release or cancel in Redis is still to do (see Beat's `dropped`). */
type Unreleased = Omit<NonNullable<Beat['dropped']>[number], 'id'>;

/** What one session has on one name: its waiters, its leases, and the heartbeat that serves them. */
export class LockState implements WaiterHost {
  readonly keys: LockKeys;
  readonly waiters = new Map<string, Waiter>();
  readonly leases = new Set<HeldLease>();
  /**
   * Ids of grants given up (released or lost) whose release in Redis is still to do: the heartbeat
   * goes on for them and releases them in Redis ("beat until released"), so a grant its process no
   * longer wants never outlives the next beat.
   */
  private readonly unreleased = new Map<string, Unreleased>();
  private timer: NodeJS.Timeout | undefined;
  /** A beat right after a quorum master's restart guard ends (beatAfter). */
  private guardTimer: NodeJS.Timeout | undefined;
  private timerPeriod = 0;
  /** One heartbeat in flight per name; a beat after a reconnect waits for the regular one. */
  private readonly beating = new Mutex();
  /** Redis time until which the last reply that refreshed this session on this name proves it alive. */
  private liveUntil = 0;
  /** On a cluster: this state asked for the name's shard channel. */
  private watching = false;

  constructor(readonly session: SessionHost, readonly name: string) {
    this.keys = lockKeys(session.options.prefix, name);
  }

  /** Reports a failed Redis call as a `redisError` event (only when someone listens). */
  redisFailed(operation: RedisOperation, error: unknown): void {
    if (this.session.events.wants('redisError')) this.session.events.fire('redisError', { name: this.name, operation, error });
  }

  private queuedOrders = 0;

  /** The order of an enqueue reply among this session's on the name: the newest waiter is the last one. */
  nextQueuedOrder(): number {
    return ++this.queuedOrders;
  }

  async confirmReplicated(id: string, durability: ResolvedDurability, signal: AbortSignal): Promise<{ acked: number; holds: boolean }> {
    let reply;
    try {
      reply = await this.sendBeat({ held: this.heldIds() }, { ...durability, signal });
    } catch (err) {
      // No WAIT connection was free before timeoutMs ran out: no replica was seen to confirm it.
      if (err instanceof WaitNotSent) return { acked: 0, holds: true };
      throw err;
    }
    return { acked: reply.acked ?? 0, holds: reply.holders.some((h) => h.id === id) };
  }

  addWaiter(waiter: Waiter): void {
    this.waiters.set(waiter.id, waiter);
    this.session.waiters.set(waiter.id, waiter);
    this.schedule();
  }

  /**
   * A waiter of this name is queued: on a cluster, subscribe the name's shard channel, then beat once
   * so that a grant published before the subscription took is found now, not at the next beat.
   */
  watchWakeups(): void {
    const wake = this.session.wakeups;
    if (!wake.sharded || this.watching) return;
    this.watching = true;
    wake.watch(this.name).then(
      (fresh) => {
        if (fresh && !this.idle) void this.beat();
      },
      (err: unknown) => {
        this.watching = false; // the next waiter tries again; meanwhile the heartbeat finds grants
        debug('subscribing the wake-ups of %s failed: %s', this.name, (err as Error)?.message);
      },
    );
  }

  cancelling(work: Promise<void>): void {
    const { cancels } = this.session;
    cancels.add(work);
    void work.finally(() => cancels.delete(work));
  }

  waiterGone(waiter: Waiter): void {
    this.waiters.delete(waiter.id);
    this.session.waiters.delete(waiter.id);
    this.settle();
  }

  leaseHeld(lease: HeldLease): void {
    this.leases.add(lease);
    this.session.locks.set(this.name, this);
    // a short auto-renewed lease may need a shorter period than the running timer's
    if (this.timer && this.period() < this.timerPeriod) this.stopTimer();
    this.schedule();
  }

  leaseGone(lease: HeldLease): void {
    this.leases.delete(lease);
    this.settle();
  }

  /** Runs the release script for `id` (`handover`: a quorum holder's); if it fails, the heartbeat retries it. */
  releaseInRedis(id: string, handover?: string): ReturnType<Scripts['release']> {
    return this.orRetry(id, 'release', this.session.scripts.release(this.keys, id, handover));
  }

  /**
   * Runs the cancel script for `id` (`since`: when it entered the queue, if known; `floor`: a quorum
   * waiter's); if it fails, the heartbeat retries it.
   */
  cancelInRedis(id: string, since?: number, group?: string, floor?: number): ReturnType<Scripts['cancel']> {
    return this.orRetry(id, 'cancel', this.session.scripts.cancel(this.keys, id, since, group, floor), since, group, floor);
  }

  /** One extra beat `ms` from now (a quorum master's restart guard ends then); the regular beats go on. */
  beatAfter(ms: number): void {
    if (this.session.stopped) return;
    clearTimeout(this.guardTimer);
    this.guardTimer = setTimeout(() => {
      this.guardTimer = undefined;
      if (!this.session.stopped) void this.beat();
    }, Math.max(0, Math.ceil(ms)));
    this.guardTimer.unref();
  }

  /** A quorum holder's handed-over grants whose release in Redis is still to do (the next beat's). */
  get handedOverLeft(): boolean {
    for (const w of this.unreleased.values()) if (w.grant) return true;
    return false;
  }

  /** The most handed-over ids that wait for the regular beat: past it, the beat is sent now. */
  static readonly MAX_AT_BEAT = 64;

  releaseAtBeat(id: string): void {
    const current = this.retryRelease(id, { grant: true });
    if (current && current.unreleased.size >= LockState.MAX_AT_BEAT) current.beatNow();
  }

  releaseLater(id: string): void {
    this.retryRelease(id, {})?.beatNow();
  }

  /** The next beat now, not at the end of the period. */
  private beatNow(): void {
    this.stopTimer();
    this.schedule(0);
  }

  private async orRetry<T>(id: string, operation: RedisOperation, call: Promise<T>, since?: number, group?: string, floor?: number): Promise<T> {
    try {
      return await call;
    } catch (err) {
      this.redisFailed(operation, err);
      this.retryRelease(id, { since, group, floor });
      throw err;
    }
  }

  /**
   * Hands `id` to the state the session now has for this name (this one, or a newer one if this went
   * idle), for its next beat; that state, or undefined once the session stopped.
   */
  private retryRelease(id: string, entry: Unreleased): LockState | undefined {
    if (this.session.stopped) return undefined;
    const current = this.session.state(this.name);
    current.unreleased.set(id, entry);
    current.schedule();
    return current;
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
        const dropped = [...this.unreleased].map(([id, w]) => ({ id, ...w }));
        // On a cluster, while waiters wait: is the wake-up subscription on the node that owns the name?
        const askSubscribers = this.watching && this.waiters.size > 0;
        const newest = this.newestQueued();
        reply = await this.sendBeat({ held: this.heldIds(), dropped, ...(newest ? { newest } : {}), askSubscribers });
        // The script released each of them if Redis still named it: either way it is gone now.
        for (const { id } of dropped) this.unreleased.delete(id);
        if (dropped.length > 0) this.settle();
      } catch (err) {
        debug('heartbeat %s failed: %s', this.name, (err as Error).message);
        this.redisFailed('heartbeat', err);
        // A key of the wrong type will not heal by retrying: fail this name's leases and waits now
        // (naming the key) instead of letting leases run out silently and waits hang until timeout.
        if ((err as { code?: unknown })?.code === 'BAD_KEY') {
          this.unreleased.clear(); // nothing can be released through a bad key: do not pile them up
          for (const lease of [...this.leases]) lease.markLost((err as Error).message, err, false);
          for (const waiter of [...this.waiters.values()]) void waiter.giveUp(err as Error);
        }
        return;
      }
      const lapsed = this.refreshed(reply.now, reply.lapsed, reply.now + this.session.options.livenessMs);
      const holders = new Map(reply.holders.map((h) => [h.id, h]));
      for (const lease of [...this.leases]) {
        const h = holders.get(lease.id);
        if (h) lease.renewed(h.exp, reply);
        // Only a beat sent after we learned of the grant can prove the grant is gone.
        else if (lease.grantedAt < reply.sentAt) lease.markLost('Redis no longer names it a holder', undefined, false);
      }
      if (reply.badQueue) {
        const err = badKeyError(reply.badQueue, 'WRONGTYPE: not a list');
        for (const waiter of [...this.waiters.values()]) void waiter.giveUp(err);
        return;
      }
      const leaseIds = new Set([...this.leases].map((l) => l.id));
      for (const h of reply.holders) {
        const waiter = this.waiters.get(h.id);
        if (waiter) waiter.grant({ token: h.token, exp: h.exp, sample: reply });
        // A grant of this session that no waiter or lease of it knows (an enqueue its client library
        // sent twice, both queued): released by the next beat instead of held until it runs out.
        else if (!leaseIds.has(h.id) && !this.unreleased.has(h.id)) this.releaseLater(h.id);
      }
      // Only the node's own count says the subscription is gone: a grant found by a beat is often
      // just a wake-up still on its way, and re-subscribing then would lose the next one.
      if (reply.subscribers === 0 && this.watching) this.session.wakeups.refresh(this.name);
      if (lapsed) await this.reenter();
    });
  }

  /**
   * A reply at Redis time `now` proved this session alive on this name until `until` (a beat moves
   * the session's deadline to now + liveness; an enqueue only when it was short): did the session
   * lapse before it? Redis says so only to the first run of the script; a repeated run (a retry
   * after a dropped connection, or ioredis resending by itself) finds the session fresh. So the
   * client also counts a lapse when `now` is past what the previous reply proved. A false "lapsed"
   * costs one idempotent acquire per waiter; a missed one left a reaped waiter waiting for ever.
   */
  refreshed(now: number, redisSaysLapsed: boolean, until: number): boolean {
    const lapsed = redisSaysLapsed || (this.liveUntil > 0 && now >= this.liveUntil);
    this.liveUntil = Math.max(this.liveUntil, until);
    return lapsed;
  }

  /** After a lapse: every waiter (but `except`) runs the idempotent acquire again, re-entering if reaped. */
  async reenter(except?: Waiter): Promise<void> {
    const others = [...this.waiters.values()].filter((w) => w !== except);
    if (others.length === 0) return;
    debug('session lapsed on %s: %d waiters re-enter', this.name, others.length);
    await Promise.all(others.map((w) => w.enqueue()));
  }

  /** The one call site of the heartbeat script (see Beat in protocol/scripts.ts). */
  private sendBeat(beat: Beat, durability?: Durability): ReturnType<Scripts['heartbeat']> {
    return this.session.scripts.heartbeat(this.keys, this.session.id, this.session.options.livenessMs, beat, durability);
  }

  private heldIds(): string[] {
    return [...new Set([...this.leases].map((l) => l.id))];
  }

  /** This session's newest waiter in this name's queue (the heartbeat checks Redis still has it). */
  private newestQueued(): { id: string; since: number; group: string | undefined; floor?: number } | undefined {
    let newest: { id: string; since: number; order: number; group: string | undefined; floor: number | undefined } | undefined;
    for (const w of this.waiters.values()) {
      const q = w.queued;
      if (q !== undefined && (newest === undefined || q.order > newest.order)) newest = { id: w.id, ...q };
    }
    if (!newest) return undefined;
    const { id, since, group, floor } = newest;
    return floor === undefined ? { id, since, group } : { id, since, group, floor };
  }

  private get idle(): boolean {
    return this.waiters.size === 0 && this.leases.size === 0 && this.unreleased.size === 0;
  }

  private period(): number {
    let ms = this.session.options.heartbeatMs;
    for (const lease of this.leases) if (lease.autoRenew) ms = Math.min(ms, Math.max(5, Math.floor(lease.lengthMs / 3)));
    return ms;
  }

  private schedule(delay?: number): void {
    if (this.timer || this.idle || this.session.stopped) return;
    this.timerPeriod = delay ?? this.period();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.beat().finally(() => this.schedule());
    }, this.timerPeriod);
    this.timer.unref();
  }

  private settle(): void {
    if (!this.idle) return;
    this.stopTimer();
    clearTimeout(this.guardTimer);
    this.guardTimer = undefined;
    if (this.watching) {
      this.watching = false;
      this.session.wakeups.unwatch(this.name);
    }
    if (this.session.locks.get(this.name) === this) this.session.locks.delete(this.name);
  }
}
