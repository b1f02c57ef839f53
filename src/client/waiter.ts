import { within } from '../bounded.js';
import { monotonic, type Stamped } from '../clock.js';
import { asFairLockError, LimitMismatchError, LockAbortedError, LockLostError, LockTimeoutError, NotReplicatedError } from '../errors.js';
import type { ResolvedAcquire, ResolvedDurability } from '../options.js';
import type { CancelReply, Scripts } from '../protocol/scripts.js';
import { eventMode, type RedisOperation } from './events.js';
import { HeldLease, localDeadline, type LeaseHost } from './held-lease.js';
import type { Request } from './lease.js';

/**
 * What a waiter needs from the per-name state of its session. Two implementations: LockState, and
 * the scripted fake host of test/unit/ (the seam between the waiter's logic and the scripts).
 */
export interface WaiterHost extends LeaseHost {
  readonly session: LeaseHost['session'] & { readonly scripts: Pick<Scripts, 'acquire'> };
  /**
   * Beats with WAIT after it: how many replicas have this session's writes on the name, and whether
   * `id` still holds. `signal` aborts when the caller gave up (its WAIT is then dropped).
   */
  confirmReplicated(id: string, durability: ResolvedDurability, signal: AbortSignal): Promise<{ acked: number; holds: boolean }>;
  /** `floor`: a quorum waiter's, which its element carries (finds it without a scan). */
  cancelInRedis(id: string, since?: number, group?: string, floor?: number): Promise<CancelReply>;
  /** The order of an enqueue reply among the session's on this name (the newest waiter is the last). */
  nextQueuedOrder(): number;
  /**
   * A reply at Redis time `now` proved the session alive on this name until `until`: true if it had
   * lapsed before.
   */
  refreshed(now: number, redisSaysLapsed: boolean, until: number): boolean;
  reenter(except?: Waiter): Promise<void>;
  /** The waiter is in the queue now: make sure its wake-up can reach this process. */
  watchWakeups(): void;
  /**
   * A quorum master's restart guard holds the name for `ms` more (Redis time): beat right after it
   * ends, so the head is granted then, not up to a heartbeat period later.
   */
  beatAfter(ms: number): void;
  waiterGone(waiter: Waiter): void;
  /** A give-up's cancel (never rejects) that may outlast the caller's wait: close() waits for it. */
  cancelling(work: Promise<void>): void;
  redisFailed(operation: RedisOperation, error: unknown): void;
}

/** A grant as the waiter learns it: from the acquire reply, a wake-up message or a heartbeat. */
export interface Grant {
  token: number;
  exp: number;
  sample?: Stamped;
  /** A quorum holder's handover, from the wake-up (see QuorumLease's release). */
  handover?: string | undefined;
}

function describeRequest(r: Request): string {
  return r.kind === 'rw' ? `the ${r.mode === 'w' ? 'write' : 'read'} side of` : `the ${r.kind}`;
}

/** 'confirming': granted, waiting for WAIT to prove the grant reached the replicas asked for. */
type Phase = 'new' | 'enqueuing' | 'queued' | 'confirming' | 'cancelling' | 'done';

/**
 * One caller asking for a lock: the one path from the acquire script to a lease, for acquire() and
 * tryAcquire() alike. It is registered with its session before its acquire script is sent, because
 * the wake-up can arrive before the script's reply; such a grant is buffered and applied once the
 * reply says the waiter is queued.
 *
 * `mode` 'wait' queues; 'try' (tryAcquire, acquire with timeoutMs 0) never queues: a busy name
 * resolves `promise` with null. A grant, in either mode, is confirmed on replicas when asked
 * (durability) and reported as `granted` in one place: take, confirm, deliver.
 */
export class Waiter {
  readonly promise: Promise<HeldLease | null>;
  /** Local monotonic time the wait began (what the events' waitedMs counts from). */
  readonly startedAt: number;
  private phase: Phase = 'new';
  /** Redis time this waiter entered the queue (its element is "id since"), once an enqueue reply said so. */
  private since: number | undefined;
  /** Order of this waiter's last enqueue reply among its session's on the name (the newest is checked by beats). */
  private queuedOrder = 0;
  private early: Grant | undefined;
  private queuedOnce = false;
  /** The lease a durable grant is being confirmed for (phase 'confirming'). */
  private confirming: HeldLease | undefined;
  /** Aborted when the caller gives up during the confirmation: nobody waits for its WAIT any more. */
  private readonly confirmation = new AbortController();
  private inflight: Promise<void> = Promise.resolve();
  private resolve!: (lease: HeldLease | null) => void;
  private reject!: (err: unknown) => void;

  constructor(
    readonly state: WaiterHost,
    readonly id: string,
    private readonly options: ResolvedAcquire,
    private readonly request: Request,
    /** 'wait' queues; 'try' asks once and never queues. */
    readonly mode: 'wait' | 'try' = 'wait',
    startedAt = monotonic(),
  ) {
    this.startedAt = startedAt;
    this.promise = new Promise<HeldLease | null>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** While it waits in the queue: when it entered (its element's `since`) and the order of that reply; else undefined. */
  get queued(): { since: number; order: number; group: string | undefined; floor: number | undefined } | undefined {
    return this.phase === 'queued' && this.since !== undefined ? { since: this.since, order: this.queuedOrder, group: this.request.group, floor: this.floor } : undefined;
  }

  /** A quorum waiter's floor: its element is "id since floor" (undefined for a single-node waiter). */
  private get floor(): number | undefined {
    return this.options.quorum?.floor;
  }

  /** The group it asked in; undefined for the default group. */
  get group(): string | undefined {
    return this.request.group;
  }

  get waiting(): boolean {
    return this.phase === 'new' || this.phase === 'enqueuing' || this.phase === 'queued';
  }

  /** Runs the engine's acquire (first time, or again after the session lapsed or a grant expired unseen). */
  enqueue(): Promise<void> {
    // One enqueue at a time: a second would clear a grant buffered while the first is in flight.
    if (this.phase !== 'new' && this.phase !== 'queued') return this.inflight;
    this.phase = 'enqueuing';
    this.early = undefined;
    this.inflight = this.runEnqueue();
    return this.inflight;
  }

  private async runEnqueue(): Promise<void> {
    let reply;
    try {
      const { session, keys } = this.state;
      // Queued before (a re-entry after a lapse, or a grant that ran out unseen): the engine looks for this waiter's element before it pushes another.
      const again = this.since === undefined ? undefined : { since: this.since };
      const { kind, limit, perGroup, group } = this.request;
      // quorum: undefined but for a quorum master's waiter; undefined sends the single-node call, byte for byte.
      reply = await session.scripts.acquire(keys, this.id, session.options.livenessMs, this.mode, kind, limit, again, { perGroup, group }, this.options.quorum);
    } catch (err) {
      if (this.phase !== 'enqueuing') return;
      this.state.redisFailed('enqueue', err);
      // The script may or may not have run: leave the queue if we got in, then fail the caller.
      this.finish('done');
      this.state.cancelInRedis(this.id, this.since, this.request.group, this.floor).catch(() => undefined);
      this.reject(asFairLockError(err, 'entering the queue failed'));
      return;
    }
    if (this.phase !== 'enqueuing') return; // gave up meanwhile; giveUp() cancels after this reply
    if (reply.kind === 'granted') {
      this.phase = 'queued';
      this.grant({ token: reply.token, exp: reply.exp, sample: reply });
      return;
    }
    if (reply.kind === 'refused') {
      this.finish('done');
      this.reject(new LimitMismatchError(this.state.name, reply.current, this.request));
      return;
    }
    if (reply.kind === 'busy') {
      // Only a 'try' is answered busy: one attempt, no queue, nothing of it left in Redis.
      this.finish('done');
      this.resolve(null);
      return;
    }
    this.phase = 'queued';
    this.since = reply.since;
    this.queuedOrder = this.state.nextQueuedOrder();
    this.state.watchWakeups();
    // A quorum master's restart guard holds the name until guardUntil (Redis ms): the heartbeat
    // after it grants the head, so beat then (reply.now was at most Redis's time on arrival).
    if (reply.guardUntil !== undefined) this.state.beatAfter(reply.guardUntil - reply.now + 1);
    // Our session had lapsed and this call revived it: the heartbeat will not report the lapse, so
    // the session's other waiters on this lock (maybe reaped as dead) must check where they stand now.
    if (this.state.refreshed(reply.now, reply.lapsed, reply.sessionDeadline)) this.state.reenter(this);
    if (!this.queuedOnce) {
      this.queuedOnce = true;
      const { events } = this.state.session;
      if (events.wants('queued')) {
        const { kind, weight, mode, group } = this.request;
        events.fire('queued', { name: this.state.name, id: this.id, position: reply.position, kind, weight, mode: eventMode(mode), group });
      }
      try {
        // An async callback's rejection must not become an unhandled rejection in the host either.
        const result: unknown = this.options.onQueued?.(reply.position);
        if (result instanceof Promise) result.catch(() => undefined);
      } catch {
        // a throwing callback must not leave a waiter in the queue that nobody listens to
      }
    }
    const early = this.early;
    this.early = undefined;
    if (early) this.grant(early);
  }

  /** A grant for this waiter's id. Buffered while the enqueue reply is outstanding. */
  grant(g: Grant): void {
    if (this.phase === 'enqueuing') {
      this.early = g;
      return;
    }
    if (this.phase !== 'queued') return;
    if (localDeadline(this.state, g.exp, g.sample, this.options.leaseMs) <= monotonic()) {
      // The grant ran out before we saw it (e.g. the process was paused): ask Redis where we stand.
      void this.enqueue();
      return;
    }
    this.take(g);
  }

  private take(g: Grant): void {
    const { leaseMs, autoRenew } = this.options;
    const lease = new HeldLease(this.state, { id: this.id, token: g.token, exp: g.exp, sample: g.sample, request: this.request, leaseMs, autoRenew, handover: g.handover });
    this.state.leaseHeld(lease);
    const durability = this.options.durability;
    if (durability) {
      this.phase = 'confirming';
      void this.confirm(lease, durability);
      return;
    }
    this.deliver(lease);
  }

  private deliver(lease: HeldLease): void {
    this.finish('done');
    const { events } = this.state.session;
    if (events.wants('granted')) {
      const { kind, weight, group } = this.request;
      events.fire('granted', { name: this.state.name, id: this.id, token: lease.token, waitedMs: lease.grantedAt - this.startedAt, kind, weight, mode: lease.mode, group, grantedAt: lease.grantedAt });
    }
    this.resolve(lease);
  }

  /**
   * Durable grants, immediate or handed over, are confirmed by a beat with WAIT right behind it (a
   * replica that has the beat has every write before it, the grant included). Only a grant waits:
   * an enqueue that merely queued is not held up by WAIT. Too few replicas: the grant is released
   * and the caller told, not handed a grant that a failover could take back.
   */
  private async confirm(lease: HeldLease, durability: ResolvedDurability): Promise<void> {
    this.confirming = lease;
    let failure: Error;
    try {
      const r = await this.state.confirmReplicated(this.id, durability, this.confirmation.signal);
      if (this.phase !== 'confirming') return; // given up meanwhile: giveUp() released the lease
      if (!r.holds) throw new LockLostError(`the grant of "${this.state.name}" ran out before it could be confirmed on ${durability.replicas} replicas`);
      // Released meanwhile (close() releases every lease) or lost: never hand out a lease that is gone.
      if (!lease.held) throw lease.signal.reason instanceof Error ? lease.signal.reason : new LockLostError(`the grant of "${this.state.name}" was released before it was confirmed`);
      if (r.acked >= durability.replicas) {
        this.deliver(lease);
        return;
      }
      failure = new NotReplicatedError(`${describeRequest(this.request)} "${this.state.name}"`, r.acked, durability.replicas, durability.timeoutMs);
    } catch (err) {
      if (this.phase !== 'confirming') return;
      failure = asFairLockError(err, 'confirming the grant on replicas failed');
    }
    this.finish('done');
    this.reject(failure);
    await lease.release().catch(() => undefined);
  }

  /**
   * The most a give-up waits for its cancel before the caller gets its error. The caller's bound is
   * its timeoutMs or its signal, not Redis's answer: a cancel answered in time (a round trip) has
   * left the queue when the caller hears; one held longer (Redis paused or unreachable, the shared
   * connection busy behind a slow or blocking command) lands in the background, retried by the
   * heartbeat, and an entry it never reaches lapses with the session's liveness.
   */
  static readonly CANCEL_GRACE_MS = 100;

  /** Timeout, abort or close: leave the queue (after the enqueue reply) and reject with `err`. */
  async giveUp(err: Error): Promise<void> {
    if (this.phase === 'confirming') {
      // Granted, but the replicas have not confirmed it yet: the caller gets its error now (a WAIT
      // or a beat held in an offline queue must not hold it), and the grant is released.
      const waitedMs = monotonic() - this.startedAt;
      this.finish('done');
      this.confirmation.abort();
      this.reportGiveUp(err, waitedMs);
      this.reject(err);
      await this.confirming?.release().catch(() => undefined);
      return;
    }
    if (!this.waiting) return;
    this.phase = 'cancelling';
    const waitedMs = monotonic() - this.startedAt;
    const cleanup = (async () => {
      await this.inflight;
      await this.state.cancelInRedis(this.id, this.since, this.request.group, this.floor); // releases at once if the grant raced ahead
    })().catch(() => undefined);
    this.state.cancelling(cleanup);
    // A grant to the abandoned id meanwhile is found by the cancel (it releases it), and is not
    // renewed by the heartbeat: it runs out within one liveness period if the cancel never lands.
    await within(cleanup, Math.min(Waiter.CANCEL_GRACE_MS, this.state.session.options.livenessMs));
    this.finish('done');
    this.reportGiveUp(err, waitedMs);
    this.reject(err);
  }

  /** `timeout` or `aborted` by the error's type (a close or a bad key emits neither). */
  private reportGiveUp(err: Error, waitedMs: number): void {
    const { events } = this.state.session;
    const { name } = this.state;
    const { kind, group } = this.request;
    if (err instanceof LockTimeoutError) {
      if (events.wants('timeout')) events.fire('timeout', { name, id: this.id, waitedMs, kind, group });
    } else if (err instanceof LockAbortedError) {
      if (events.wants('aborted')) events.fire('aborted', { name, id: this.id, waitedMs, reason: err.cause, kind, group });
    }
  }

  private finish(phase: Phase): void {
    this.phase = phase;
    this.state.waiterGone(this);
  }
}
