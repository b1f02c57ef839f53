/**
 * The scripted fake host of the unit tests of src/client/: the seam between the client's logic and
 * the scripts, with no Redis behind it. FakeScripts stands where Scripts does: every script call is
 * recorded and stays pending until the test answers it (`next(script).reply(...)`), so a test picks
 * the order in which replies, wake-ups and timers arrive. FakeHost is a waiter's and a lease's
 * per-name state (WaiterHost, LeaseHost); fakeSession() is a LockState's session (SessionHost).
 * Redis's clock is the fake clock here: a reply's `now` is the fake time it is answered at.
 */
import { ClockBound, monotonic } from '../../src/clock.js';
import type { EventSink, FairLocksEventName } from '../../src/client/event-map.js';
import type { HeldLease } from '../../src/client/held-lease.js';
import type { Request } from '../../src/client/lease.js';
import { LockState, type SessionHost } from '../../src/client/lock-state.js';
import type { Waiter, WaiterHost } from '../../src/client/waiter.js';
import { resolveAcquire, resolveOptions, type AcquireOptions, type FairLocksOptions, type ResolvedAcquire, type ResolvedDurability } from '../../src/options.js';
import { lockKeys, type Kind, type LockKeys } from '../../src/protocol/keys.js';
import type { AcquireReply, Beat, CancelReply, CommitReply, Durability, ExtendReply, HeartbeatReply, ReleaseReply } from '../../src/protocol/scripts.js';

export type ScriptName = 'acquire' | 'release' | 'cancel' | 'heartbeat' | 'extend' | 'commit' | 'confirm';

/** One script call, pending until the test answers it. */
export interface Call {
  script: ScriptName;
  /** The call's arguments after the keys (and, for heartbeat, after session id and liveness). */
  args: unknown[];
  sentAt: number;
  answered: boolean;
  /** Answers with `fields`; `now` (Redis time) and `sentAt` are added. */
  reply(fields: object): void;
  fail(err: unknown): void;
}

export class FakeScripts {
  readonly clock = new ClockBound();
  readonly calls: Call[] = [];

  /** The liveness the last acquire was sent with: a queued reply proves the session alive that long. */
  private livenessMs = 1_000;

  acquire(_keys: LockKeys, id: string, livenessMs: number, mode: 'wait' | 'try', kind: Kind, limit: number): Promise<AcquireReply> {
    this.livenessMs = livenessMs;
    return this.call('acquire', [id, mode, kind, limit]);
  }

  release(_keys: LockKeys, id: string): Promise<ReleaseReply> {
    return this.call('release', [id]);
  }

  cancel(_keys: LockKeys, id: string, _since?: number): Promise<CancelReply> {
    return this.call('cancel', [id]);
  }

  heartbeat(_keys: LockKeys, _sessionId: string, _livenessMs: number, beat: Beat = { held: [] }, durability?: Durability): Promise<HeartbeatReply> {
    return this.call('heartbeat', [beat, durability]);
  }

  extend(_keys: LockKeys, id: string, ms: number): Promise<ExtendReply> {
    return this.call('extend', [id, ms]);
  }

  commit(_keys: LockKeys, id: string, token: number): Promise<CommitReply> {
    return this.call('commit', [id, token]);
  }

  /** The oldest unanswered call of `script`; throws when there is none. */
  next(script: ScriptName): Call {
    const call = this.calls.find((c) => c.script === script && !c.answered);
    if (!call) throw new Error(`no ${script} call is pending (calls so far: ${this.calls.map((c) => c.script).join(', ') || 'none'})`);
    return call;
  }

  /** How many calls of `script` were made, answered or not. */
  count(script: ScriptName): number {
    return this.calls.filter((c) => c.script === script).length;
  }

  call<T>(script: ScriptName, args: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const sentAt = monotonic();
      const call: Call = {
        script,
        args,
        sentAt,
        answered: false,
        reply: (fields) => {
          call.answered = true;
          const now = monotonic();
          this.clock.observe({ now, sentAt });
          // A queued reply proves the session alive for a liveness from now, unless the test says otherwise.
          const deadline = (fields as { kind?: string }).kind === 'queued' ? { sessionDeadline: now + this.livenessMs } : {};
          resolve({ now, sentAt, ...deadline, ...fields } as T);
        },
        fail: (err) => {
          call.answered = true;
          reject(err);
        },
      };
      this.calls.push(call);
    });
  }
}

/**
 * What a heartbeat call asked: the leases to renew, the given-up grants to release, the newest
 * queued waiter to check, and whether to count the shard channel's subscribers. (The one place that
 * knows how the heartbeat's arguments are spelled.)
 */
export function beatParts(call: Call): { held: string[]; dropped: string[]; newest: string | undefined; askSubscribers: boolean } {
  const beat = call.args[0] as Beat;
  return {
    held: [...beat.held],
    dropped: (beat.dropped ?? []).map((d) => d.id),
    newest: beat.newest?.id,
    askSubscribers: beat.askSubscribers ?? false,
  };
}

/**
 * An acquire reply that queued the waiter at `position` (lapsed: the call revived a lapsed session),
 * entered the queue at Redis time SINCE.
 */
export function queued(position = 1, lapsed = false): object {
  return { kind: 'queued', since: SINCE, position, lapsed };
}

/** The Redis time the fake queued replies say a waiter entered the queue. */
export const SINCE = 1_000;

/** The token the fake grants carry. */
export const TOKEN = 7;

/** Records every event fired, as [name, ...payload]. */
export function recordingSink(): EventSink & { fired: unknown[][]; names(): FairLocksEventName[] } {
  const fired: unknown[][] = [];
  return {
    fired,
    names: () => fired.map((e) => e[0] as FairLocksEventName),
    wants: () => true,
    fire: (event, ...args) => void fired.push([event, ...args]),
  };
}

const GIVEN: FairLocksOptions = { prefix: 'unit', leaseMs: 1_000, livenessMs: 1_000, heartbeatMs: 200 };
export const OPTIONS = resolveOptions(GIVEN);
export const LOCK: Request = { kind: 'lock', limit: 1, weight: 1, mode: 'x' };

export function acquireOptions(options: AcquireOptions = {}): ResolvedAcquire {
  return resolveAcquire(options, OPTIONS);
}

/** A waiter's and a lease's per-name state that records what they ask of it. */
export class FakeHost implements WaiterHost {
  readonly name = 'n';
  readonly keys = lockKeys(OPTIONS.prefix, 'n');
  readonly scripts = new FakeScripts();
  readonly events = recordingSink();
  readonly session = { options: OPTIONS, scripts: this.scripts, events: this.events };
  readonly leases = new Set<HeldLease>();
  /** Everything else asked of the host, in order ("releaseLater id", "reenter", ...). */
  readonly log: string[] = [];

  leaseHeld(lease: HeldLease): void {
    this.leases.add(lease);
  }

  leaseGone(lease: HeldLease): void {
    this.leases.delete(lease);
  }

  releaseInRedis(id: string): Promise<ReleaseReply> {
    return this.scripts.release(this.keys, id);
  }

  releaseLater(id: string): void {
    this.log.push(`releaseLater ${id}`);
  }

  releaseAtBeat(id: string): void {
    this.log.push(`releaseAtBeat ${id}`);
  }

  confirmReplicated(id: string, durability: ResolvedDurability, signal: AbortSignal): Promise<{ acked: number; holds: boolean }> {
    return this.scripts.call('confirm', [id, durability, signal]);
  }

  private queuedOrders = 0;

  nextQueuedOrder(): number {
    return ++this.queuedOrders;
  }

  cancelInRedis(id: string, since?: number): Promise<CancelReply> {
    return this.scripts.cancel(this.keys, id, since);
  }

  refreshed(_now: number, redisSaysLapsed: boolean, _until: number): boolean {
    return redisSaysLapsed;
  }

  async reenter(): Promise<void> {
    this.log.push('reenter');
  }

  watchWakeups(): void {
    this.log.push('watchWakeups');
  }

  beatAfter(ms: number): void {
    this.log.push(`beatAfter ${ms}`);
  }

  waiterGone(waiter: Waiter): void {
    this.log.push(`waiterGone ${waiter.id}`);
  }

  /** Give-ups' cancels, as close() would find them. */
  readonly cancels: Promise<void>[] = [];

  cancelling(work: Promise<void>): void {
    this.cancels.push(work);
  }

  redisFailed(operation: string): void {
    this.log.push(`redisFailed ${operation}`);
  }
}

/** A LockState's session: real LockStates over FakeScripts, no wake-up subscriber (one Redis). */
export function fakeSession(options: FairLocksOptions = {}): SessionHost & { scripts: FakeScripts; events: ReturnType<typeof recordingSink>; stopped: boolean } {
  const session = {
    id: 'sess',
    options: resolveOptions({ ...GIVEN, ...options }),
    scripts: new FakeScripts(),
    wakeups: { sharded: false, watch: () => Promise.resolve(false), unwatch: () => undefined, refresh: () => undefined },
    events: recordingSink(),
    stopped: false,
    waiters: new Map<string, Waiter>(),
    locks: new Map<string, LockState>(),
    cancels: new Set<Promise<void>>(),
    state(name: string): LockState {
      let state = session.locks.get(name);
      if (!state) session.locks.set(name, (state = new LockState(session, name)));
      return state;
    },
  };
  return session;
}
