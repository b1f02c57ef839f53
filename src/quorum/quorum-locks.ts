import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { within } from '../bounded.js';
import type { Lease } from '../client/lease.js';
import type { LockInfo } from '../client/lock-info.js';
import { atDeadline, monotonic } from '../clock.js';
import { asFairLockError, ClosedError, FairLockError, InvalidArgumentError, LockAbortedError, LockTimeoutError } from '../errors.js';
import { checkName, checkObject, describe, resolveAcquire, type FairLocksOptions } from '../options.js';
import { adaptClient } from '../redis/adapt.js';
import type { RedisClientLike, RedisSeam } from '../redis/seam.js';
import { climb, giveBack } from './chain.js';
import { Master, type MasterLocks, type MasterWatch } from './master.js';
import type { QuorumEventName, QuorumEvents, QuorumSink } from './quorum-events.js';
import { QuorumLease, type QuorumLeaseHost } from './quorum-lease.js';
import { QuorumLock, type QuorumAcquireOptions } from './quorum-lock.js';
import { majorityOf, resolveQuorumOptions, type QuorumOptions, type ResolvedQuorumOptions } from './quorum-options.js';

/** @internal Makes one master's FairLocks (FairLocks.quorum passes its own constructor). */
export type MasterLocksFactory = (client: RedisClientLike, options: FairLocksOptions) => MasterLocks;

/** What `inspect()` reports of one master: its single-node LockInfo, or why it could not be read. */
export interface MasterInfo {
  /** The master's index, in the order given to `FairLocks.quorum`. */
  master: number;
  /** Its single-node view of the name; undefined when it could not be read. */
  info?: LockInfo;
  /** Why it could not be read (unreachable, no answer within commandTimeoutMs); undefined when `info` is there. */
  error?: FairLockError;
}

/** What `quorum.inspect(name)` reports: each master's view of the name, in the masters' order. */
export interface QuorumLockInfo {
  /** One entry per master, by index. */
  masters: MasterInfo[];
}

/**
 * A fair lock over N independent Redis masters (odd N ≥ 3; a majority is ⌊N/2⌋ + 1): DESIGN §8,
 * "the chain". Made by `FairLocks.quorum([c0, c1, c2, ...], options)`. Each master runs the
 * single-node engine (one FairLocks per master, owned here); an acquire waits on the masters in
 * their fixed order, FIFO on each, skipping one it cannot reach, until it holds a majority. With
 * every master up, critical sections follow master 0's queue order: the fairness of one Redis.
 *
 * The exclusive lock only. A counting semaphore cannot keep its limit by majorities: with N = 3,
 * 2 permits and two cut links, A holds masters {0, 2}, B {1, 2}, C {0, 1}; every master sees 2
 * holders, yet 3 clients hold (DESIGN §8). A read-write lock is not offered until it is shown.
 *
 * Checks at once: the count (an odd number of at least 3), that no client is a cluster (or pool)
 * client, and that no client is given twice. Two clients of one server (the same INFO `run_id`)
 * are found when both have answered, before either is used: each master's run_id is read on its
 * first use, and a duplicate fails that call and every later one with InvalidArgumentError;
 * `verify()` reads them all up front.
 */
export class QuorumLocks extends EventEmitter<QuorumEvents> {
  /** ⌊N/2⌋ + 1: how many masters a lease holds. */
  readonly majority: number;
  private readonly masters: Master[];
  private readonly seams: RedisSeam[];
  private readonly options: ResolvedQuorumOptions;
  private readonly id = randomBytes(6).toString('hex');
  private seq = 0;
  private readonly runIds = new Map<string, number>();
  private misconfigured: InvalidArgumentError | undefined;
  private readonly active = new Set<AbortController>();
  private readonly leases = new Set<QuorumLease>();
  private readonly downListeners = new Set<(m: Master) => void>();
  private closing: Promise<void> | undefined;
  private readonly sink: QuorumSink;

  /** @internal Use `FairLocks.quorum(clients, options)`. */
  constructor(clients: readonly RedisClientLike[], options: QuorumOptions | undefined, makeLocks: MasterLocksFactory) {
    super({ captureRejections: true });
    if (!Array.isArray(clients)) throw new InvalidArgumentError(`clients must be an array of clients of independent masters, got ${describe(clients)}`);
    const n = clients.length;
    if (n < 3 || n % 2 === 0) {
      throw new InvalidArgumentError(`a quorum needs an odd number of at least 3 masters (an even count adds a master without adding a tolerated failure), got ${n}`);
    }
    if (new Set(clients).size !== n) throw new InvalidArgumentError('a quorum was given the same client twice: each master needs a client of its own');
    this.options = resolveQuorumOptions(options);
    this.seams = clients.map((client, i) => {
      let seam: RedisSeam;
      try {
        seam = adaptClient(client);
      } catch (err) {
        throw new InvalidArgumentError(`clients[${i}]: ${(err as Error).message}`, { cause: err });
      }
      if (seam.cluster) throw new InvalidArgumentError(`clients[${i}] is a cluster client: a quorum takes one client per independent master (a cluster with durability is the other way to survive a failover)`);
      return seam;
    });
    this.majority = majorityOf(n);
    this.sink = {
      wants: (event) => this.listenerCount(event) > 0,
      fire: (event, ...args) => {
        for (const listener of this.rawListeners(event) as ((...a: unknown[]) => unknown)[]) {
          try {
            const result = listener.apply(this, args);
            if (result instanceof Promise) result.catch((err: unknown) => warn(event, err));
          } catch (err) {
            warn(event, err);
          }
        }
      },
    };
    const watch: MasterWatch = {
      down: (m, error) => {
        if (this.sink.wants('masterDown')) this.sink.fire('masterDown', { master: m.index, error });
        for (const fn of [...this.downListeners]) fn(m);
      },
      up: (m) => {
        if (this.sink.wants('masterUp')) this.sink.fire('masterUp', { master: m.index });
      },
      redisError: (m, event) => {
        if (this.sink.wants('redisError')) this.sink.fire('redisError', { ...event, master: m.index });
      },
      identified: (m, runId) => this.identified(m, runId),
    };
    const { commandTimeoutMs, guardMs } = this.options;
    const { heartbeatMs } = this.options.perMaster;
    this.masters = clients.map((client, i) => new Master(i, makeLocks(client, this.options.perMaster), this.seams[i]!, { commandTimeoutMs, heartbeatMs, guardMs }, watch));
  }

  /** @internal A listener's rejected promise (captureRejections): a warning, never a crash. */
  override [EventEmitter.captureRejectionSymbol](err: Error, event: unknown, ..._args: unknown[]): void {
    warn(event, err);
  }

  /** The number of masters. */
  get size(): number {
    return this.masters.length;
  }

  /** A handle on the exclusive lock `name`; `options` are defaults for its acquires. No I/O. */
  lock(name: string, options?: QuorumAcquireOptions): QuorumLock {
    this.usable();
    return new QuorumLock((n, o, mode) => this.ask(n, o, mode), checkName(name), checkObject(options, 'lock options') ?? {});
  }

  /**
   * Reads every master's run_id now (INFO server, each bounded by commandTimeoutMs): rejects with
   * InvalidArgumentError when two clients reach one server; resolves with the indexes of the masters
   * that answered (fewer than a majority is not an error here: acquires will say so).
   */
  async verify(): Promise<number[]> {
    this.usable();
    const answered = await Promise.all(this.masters.map((m) => m.ready().then(() => true, (err: unknown) => (err instanceof InvalidArgumentError ? Promise.reject(err) : false))));
    this.usable();
    return this.masters.filter((_, i) => answered[i]).map((m) => m.index);
  }

  /** Each master's view of `name` (its single-node LockInfo), or the error that master answered; each bounded by commandTimeoutMs. */
  async inspect(name: string): Promise<QuorumLockInfo> {
    this.usable();
    const checked = checkName(name);
    const masters = await Promise.all(
      this.masters.map(async (m): Promise<MasterInfo> => {
        try {
          return { master: m.index, info: await m.inspect(checked) };
        } catch (err) {
          return { master: m.index, error: asFairLockError(err, `inspect on master ${m.index}`) };
        }
      }),
    );
    return { masters };
  }

  /** Gives up this quorum's acquires (ClosedError), releases its leases, closes each master's FairLocks; bounded by about one livenessMs. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const c of [...this.active]) c.abort(new ClosedError('this quorum was closed while acquiring'));
    const bound = this.options.perMaster.livenessMs;
    await within(Promise.all([...this.leases].map((l) => l.release().catch(() => undefined))), bound);
    for (const m of this.masters) m.stop();
    await within(Promise.all([...this.masters.map((m) => m.locks.close()), ...this.seams.map((s) => s.close(bound))]), bound);
  }

  /** Throws ClosedError once closed, the InvalidArgumentError of a duplicate master once one was found. */
  private usable(): void {
    if (this.closing) throw new ClosedError('this quorum is closed');
    if (this.misconfigured) throw this.misconfigured;
  }

  private identified(m: Master, runId: string): void {
    const other = this.runIds.get(runId);
    if (other !== undefined && other !== m.index) {
      this.misconfigured ??= new InvalidArgumentError(`clients[${other}] and clients[${m.index}] reach the same Redis server (run_id ${runId}): a quorum needs independent masters`);
      throw this.misconfigured;
    }
    this.runIds.set(runId, m.index);
  }

  private readonly leaseHost: QuorumLeaseHost = {
    masters: [],
    majority: 0,
    events: { wants: () => false, fire: () => undefined },
    onMasterDown: (fn) => {
      this.downListeners.add(fn);
      return () => this.downListeners.delete(fn);
    },
    leaseGone: (lease) => this.leases.delete(lease),
  };

  /**
   * One acquire: the climb (chain.ts) raced against the caller's bound. The bound (timeoutMs, the
   * signal, close()) rejects at once: what the climb holds or still waits for is given back behind it.
   */
  private async ask(name: string, options: QuorumAcquireOptions, mode: 'wait' | 'try'): Promise<Lease | null> {
    this.usable();
    const o = resolveAcquire(options, this.options.perMaster);
    if (o.signal?.aborted) throw new LockAbortedError(`gave up waiting for the quorum lock "${name}": aborted`, { cause: o.signal.reason });
    const id = `${this.id}:${++this.seq}`;
    const startedAt = monotonic();
    const give = new AbortController();
    this.active.add(give);
    const timer = mode === 'wait' && o.timeoutMs !== undefined ? atDeadline(startedAt + o.timeoutMs, () => give.abort(new LockTimeoutError(`timed out after ${o.timeoutMs} ms waiting for the quorum lock "${name}"`))) : undefined;
    const onAbort = () => give.abort(new LockAbortedError(`gave up waiting for the quorum lock "${name}": aborted`, { cause: o.signal?.reason }));
    if (mode === 'wait') o.signal?.addEventListener('abort', onAbort, { once: true });
    let queuedOnce = false;
    const climbing = climb(
      {
        masters: this.masters,
        majority: this.majority,
        name,
        leaseMs: o.leaseMs,
        autoRenew: o.autoRenew,
        maxRestarts: this.options.maxRestarts,
        restartPauseMs: this.options.perMaster.heartbeatMs,
        signal: give.signal,
        onQueued: (master, position) => {
          if (this.sink.wants('queued')) this.sink.fire('queued', { name, id, master, position });
          if (queuedOnce) return;
          queuedOnce = true;
          try {
            const r: unknown = o.onQueued?.(position);
            if (r instanceof Promise) r.catch(() => undefined);
          } catch {
            // a throwing callback must not break the climb
          }
        },
      },
      mode,
    );
    try {
      const climbed = await Promise.race([climbing, rejectOnAbort(give.signal)]);
      if (!climbed) return null;
      const lease = new QuorumLease({ ...this.leaseHost, masters: this.masters, majority: this.majority, events: this.sink }, name, id, climbed.token, climbed.held, o.leaseMs, o.autoRenew);
      this.leases.add(lease);
      if (this.sink.wants('granted')) this.sink.fire('granted', { name, id, token: lease.token, waitedMs: lease.grantedAt - startedAt, masters: lease.masters, restarts: climbed.restarts });
      return lease;
    } catch (err) {
      if (give.signal.aborted && err === give.signal.reason) {
        // Given up: the climb ends behind the caller; a majority it got meanwhile is given back.
        climbing.then((c) => c && giveBack(c.held), () => undefined);
        const waitedMs = monotonic() - startedAt;
        if (err instanceof LockTimeoutError && this.sink.wants('timeout')) this.sink.fire('timeout', { name, id, waitedMs });
        if (err instanceof LockAbortedError && this.sink.wants('aborted')) this.sink.fire('aborted', { name, id, waitedMs, reason: err.cause });
      }
      throw asFairLockError(err, `acquiring the quorum lock "${name}"`);
    } finally {
      timer?.cancel();
      o.signal?.removeEventListener('abort', onAbort);
      this.active.delete(give);
    }
  }
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

function warn(event: unknown, err: unknown): void {
  let text: string;
  try {
    text = err instanceof Error ? `${err.name}: ${err.message}` : describe(err);
  } catch {
    text = 'an unprintable value';
  }
  process.emitWarning(`a '${String(event)}' listener of a quorum threw: ${text}`, 'FairLockWarning');
}

export type { QuorumEventName };
