import { EventEmitter } from 'node:events';
import { within } from './bounded.js';
import type { EventSink, FairLocksEventName, FairLocksEvents } from './client/event-map.js';
import type { GroupInfo, LockInfo } from './client/lock-info.js';
import { Session } from './client/session.js';
import { ClosedError, InvalidArgumentError } from './errors.js';
import { FairLock, type Engine } from './primitives/lock.js';
import { FairReadWriteLock } from './primitives/read-write.js';
import { FairSemaphore } from './primitives/semaphore.js';
import {
  checkGroup,
  checkName,
  checkObject,
  checkPermits,
  describe,
  resolveOptions,
  type AcquireOptions,
  type FairLocksOptions,
  type SemaphoreOptions,
} from './options.js';
import { lockKeys, parseWaiterId } from './protocol/keys.js';
import { adaptClient } from './redis/adapt.js';
import type { RedisClientLike, RedisSeam } from './redis/seam.js';
import { QuorumLocks } from './quorum/quorum-locks.js';
import type { QuorumOptions } from './quorum/quorum-options.js';

function describeError(err: unknown): string {
  try {
    return err instanceof Error ? `${err.name}: ${err.message}` : describe(err);
  } catch {
    return 'an unprintable value';
  }
}

export type { HolderInfo, GroupInfo, WaiterInfo, LockInfo } from './client/lock-info.js';
export type { FairLocksEvents, FairLocksEventName } from './client/event-map.js';
export type {
  QueuedEvent,
  EventMode,
  GrantedEvent,
  ReleasedEvent,
  TimeoutEvent,
  AbortedEvent,
  RedisErrorEvent,
  RedisOperation,
} from './client/events.js';

/** The most queue entries `inspect()` returns. */
const INSPECT_LIMIT = 10_000;

/**
 * The entry point: one per process is typical. Takes a node-redis 4, 5 or 6 client (connected) or an
 * ioredis 5 or 6 client, which `close()` leaves open; makes its own subscriber with
 * `client.duplicate()`, and owns one session. Refuses at once a cluster or pool client, node-redis's
 * `legacyMode`, an unconnected node-redis client and a closed ioredis one (InvalidArgumentError).
 */
export class FairLocks extends EventEmitter<FairLocksEvents> {
  private readonly session: Session;
  /** The client seam: close() closes the connections it made itself (durability's WAIT connection). */
  private readonly redis: RedisSeam;
  private closing: Promise<void> | undefined;

  constructor(client: RedisClientLike, options?: FairLocksOptions) {
    super({ captureRejections: true }); // an async listener that rejects reaches the method below, not the host
    const redis = (this.redis = adaptClient(client));
    const resolved = resolveOptions(options);
    // A throwing listener must neither break the heartbeat, the deadline timer that reports a loss or
    // the grant path, nor crash the host: it becomes a process warning. Payloads are built by the
    // callers only when `wants(event)`: with nobody listening an event costs one listenerCount.
    const sink: EventSink = {
      wants: (event) => this.listenerCount(event) > 0,
      // Each listener on its own (emit() would skip the listeners after one that throws, e.g. the
      // metrics' own); a rejected promise is caught here as captureRejections would.
      fire: (event, ...args) => {
        for (const listener of this.rawListeners(event) as ((...a: unknown[]) => unknown)[]) {
          try {
            const result = listener.apply(this, args);
            if (result instanceof Promise) result.catch((err: unknown) => this.listenerRejected(err, event));
          } catch (listenerErr) {
            process.emitWarning(`a '${event}' listener of FairLocks threw: ${describeError(listenerErr)}`, 'FairLockWarning');
          }
        }
      },
    };
    this.session = new Session(redis, resolved, sink);
  }

  /**
   * A fair exclusive lock over N independent Redis masters (no replication between them): DESIGN
   * §8's chain, a Redlock in FIFO order. `clients`: an odd number, at least 3, of clients each of
   * its own server (not cluster clients); a lease holds a majority, ⌊N/2⌋ + 1, of them and
   * survives a minority going down. Refuses at once a count that is even or below 3, a cluster client
   * and a client given twice (InvalidArgumentError); two clients of one server (INFO run_id) are
   * refused when first used, or by `verify()`. The clients stay the caller's: `close()` leaves them open.
   */
  static quorum(clients: readonly RedisClientLike[], options?: QuorumOptions): QuorumLocks {
    return new QuorumLocks(clients, options, (client, o) => new FairLocks(client, o));
  }

  /** @internal A listener's rejected promise (captureRejections): a warning, never a crash. */
  override [EventEmitter.captureRejectionSymbol](err: Error, event: unknown, ..._args: unknown[]): void {
    this.listenerRejected(err, event);
  }

  private listenerRejected(err: unknown, event: unknown): void {
    process.emitWarning(`a '${String(event)}' listener of FairLocks rejected: ${describeError(err)}`, 'FairLockWarning');
  }

  /** @internal The waiters this instance has queued per name now (local state, no I/O; a 'try' in flight never queues): the metrics' queue gauge. */
  localWaiters(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [name, state] of this.session.locks) {
      let n = 0;
      for (const w of state.waiters.values()) if (w.mode === 'wait') n++;
      if (n > 0) counts.set(name, n);
    }
    return counts;
  }

  /** @internal This instance's own waiters per name and group (local state, no I/O): the metrics' queue gauge. */
  localWaitersByGroup(): { name: string; group: string | undefined; count: number }[] {
    const out: { name: string; group: string | undefined; count: number }[] = [];
    for (const [name, state] of this.session.locks) {
      const counts = new Map<string | undefined, number>();
      for (const w of state.waiters.values()) if (w.mode === 'wait') counts.set(w.group, (counts.get(w.group) ?? 0) + 1);
      for (const [group, count] of counts) out.push({ name, group, count });
    }
    return out;
  }

  /** @internal Whether this instance has a waiter queued on `name` now (local state, no I/O): the metrics' hand-off. */
  hasLocalWaiters(name: string): boolean {
    for (const w of this.session.locks.get(name)?.waiters.values() ?? []) if (w.mode === 'wait') return true;
    return false;
  }

  /** This instance's session id: the first part of every waiter and holder id it creates. */
  get sessionId(): string {
    return this.session.id;
  }

  /** A handle on the lock `name`; `options` are defaults for its acquires. No I/O. */
  lock(name: string, options?: AcquireOptions): FairLock {
    this.internals();
    return new FairLock(this.engine, checkName(name), checkObject(options, 'lock options') ?? {}, { kind: 'lock', limit: 1, mode: 'x' });
  }

  /**
   * A handle on the fair counting semaphore `name` of `options.permits` permits; the other options
   * are defaults for its acquires. A busy name keeps the limit it has (LimitMismatchError). No I/O.
   */
  semaphore(name: string, options: SemaphoreOptions): FairSemaphore {
    this.internals();
    const { permits, perGroup, ...defaults } = checkObject(options, 'semaphore options') ?? ({} as Partial<SemaphoreOptions>);
    const limit = checkPermits(permits, 'options.permits');
    if (perGroup !== undefined) {
      checkPermits(perGroup, 'options.perGroup');
      if (perGroup > limit) throw new InvalidArgumentError(`options.perGroup (${perGroup}) is more than options.permits (${limit})`);
    }
    if (defaults.group !== undefined) checkGroup(defaults.group);
    return new FairSemaphore(this.engine, checkName(name), defaults, { kind: 'semaphore', limit, mode: 'x', perGroup });
  }

  /** The fair read-write lock `name`: `.read()` and `.write()` give its two handles. No I/O. */
  readWrite(name: string, options?: AcquireOptions): FairReadWriteLock {
    this.internals();
    return new FairReadWriteLock(this.engine, checkName(name), checkObject(options, 'read-write options') ?? {});
  }

  /** The holders and the live queue of `name`, in order. */
  async inspect(name: string): Promise<LockInfo> {
    const session = this.internals();
    const reply = await session.scripts.inspect(lockKeys(session.options.prefix, checkName(name)), INSPECT_LIMIT);
    const [kindText, limitText, perGroupText] = reply.kindLimit.split(' ');
    const kind = kindText === 'lock' || kindText === 'semaphore' || kindText === 'rw' ? kindText : undefined;
    const limit = kind === 'lock' || kind === 'semaphore' ? Number(limitText) : undefined;
    const perGroup = kind === 'semaphore' && perGroupText ? Number(perGroupText) : undefined;
    const groupOf = (g: string) => (g === '' ? undefined : g);
    const modeOf = (id: string) => ({ weight: parseWaiterId(id).weight, mode: kind === 'rw' ? (parseWaiterId(id).mode === 'w' ? 'write' as const : 'read' as const) : undefined });
    const holders = reply.holders
      .map((h) => ({ id: h.id, token: h.token, leaseLeftMs: Math.max(0, h.exp - reply.now), heldMs: Math.max(0, reply.now - h.grantedAt), ...modeOf(h.id), group: groupOf(h.group) }))
      .sort((a, b) => a.token - b.token);
    const used = holders.reduce((sum, h) => sum + h.weight, 0);
    // Groups in rotation order (plain mode: the default group only), then those that only hold.
    const groups = new Map<string, GroupInfo>();
    const entry = (g: string, capped = false) => {
      let info = groups.get(g);
      if (!info) groups.set(g, (info = { group: groupOf(g), held: 0, waiting: 0, capped }));
      return info;
    };
    for (const g of reply.groups) entry(g.group, g.parked);
    const positions = new Map<string, number>();
    const queue = reply.queue.map((e) => {
      const position = (positions.get(e.group) ?? 0) + 1;
      positions.set(e.group, position);
      entry(e.group).waiting++;
      return { id: e.id, position, waitedMs: Math.max(0, reply.now - e.since), ...modeOf(e.id), group: groupOf(e.group) };
    });
    for (const h of holders) entry(h.group ?? '').held += h.weight;
    // Capped: its next waiter would take it past perGroup (the engine parks such a group only when it
    // reaches the front with permits free; inspect() says it as soon as it is so).
    if (perGroup !== undefined) {
      const heads = new Map<string, number>();
      for (const e of queue) if (!heads.has(e.group ?? '')) heads.set(e.group ?? '', e.weight);
      for (const [g, info] of groups) {
        const head = heads.get(g);
        info.capped = info.capped || (head !== undefined && info.held + head > perGroup);
      }
    }
    return {
      kind,
      limit,
      perGroup,
      available: limit === undefined ? undefined : Math.max(0, limit - used),
      holders,
      holder: holders[0] ?? null,
      queue,
      groups: [...groups.values()].filter((g) => g.held > 0 || g.waiting > 0 || g.capped),
      recentReleases: reply.released,
    };
  }

  /** Stops timers, cancels this instance's waits (ClosedError), releases its leases, quits the subscriber. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** The session the handles use; throws ClosedError once closed. */
  private internals(): Session {
    if (this.closing) throw new ClosedError('this FairLocks instance is closed');
    return this.session;
  }

  private readonly engine: Engine = () => this.internals();

  private async shutdown(): Promise<void> {
    const states = [...this.session.locks.values()];
    const waiters = states.flatMap((s) => [...s.waiters.values()]);
    const leases = states.flatMap((s) => [...s.leases]);
    // Bounded like a give-up: while Redis does not answer, close() still returns after about one
    // liveness period (the releases still run if Redis comes back; unreleased leases run out).
    // Then one beat, within one heartbeat period, on each name with a quorum holder's handed-over
    // grants left to the heartbeat (after close() no beat would release them; Redis answered their
    // release a moment ago). Not for releases that failed: Redis is failing, the beat would wait.
    const { livenessMs: bound, heartbeatMs } = this.session.options;
    const handedOver = () => [...this.session.locks.values()].filter((s) => s.handedOverLeft);
    await within(
      Promise.all([
        ...waiters.map((w) => w.giveUp(new ClosedError(`FairLocks closed while waiting for the lock "${w.state.name}"`))),
        ...leases.map((l) => l.release().catch(() => undefined)),
      ])
        // A give-up answers its caller before a slow cancel lands (these, and earlier timeouts'): wait for them too.
        .then(() => Promise.all(this.session.cancels))
        .then(() => within(Promise.all(handedOver().map((s) => s.beat())), heartbeatMs)),
      bound,
    );
    this.session.stop();
    await Promise.all([this.session.wakeups.close(bound), this.redis.close(bound)]);
  }
}
