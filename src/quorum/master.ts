import { withTimeout } from '../bounded.js';
import type { FairLocksEvents } from '../client/event-map.js';
import type { HeldLease } from '../client/held-lease.js';
import type { Lease } from '../client/lease.js';
import type { LockInfo } from '../client/lock-info.js';
import { asFairLockError, FairLockError, InvalidArgumentError } from '../errors.js';
import { QUORUM_ACQUIRE, type AcquireOptions, type QuorumAcquireOption } from '../options.js';
import type { RedisSeam } from '../redis/seam.js';

/** What the quorum uses of one master's FairLocks (made by FairLocks.quorum, which owns the class). */
export interface MasterLocks {
  lock(name: string): {
    acquire(options?: AcquireOptions): Promise<Lease>;
    tryAcquire(options?: Omit<AcquireOptions, 'timeoutMs' | 'onQueued'>): Promise<Lease | null>;
  };
  inspect(name: string): Promise<LockInfo>;
  on<E extends keyof FairLocksEvents>(event: E, listener: (...args: FairLocksEvents[E]) => void): unknown;
  close(): Promise<void>;
}

/** Master i could not be reached for this step (an error, a timeout, a failed heartbeat or probe): the chain skips it. */
export class MasterUnreachable extends FairLockError {
  constructor(readonly master: number, why: string, cause?: unknown) {
    super(`master ${master} is unreachable: ${why}`, 'REDIS_ERROR', cause === undefined ? undefined : { cause });
  }
}

/** What the chain asks of one wait or attempt on a master. */
export interface TakeOptions {
  /**
   * The highest token this acquire got so far (0: none yet): the master grants at least this (DESIGN
   * §8 rule 2). It rides in the waiter's queue element and bounds the token taken when the grant is made.
   */
  floor: number;
  /** A grant on this master that the previous holder handed over to this acquire (its id), released first. */
  prev?: string | undefined;
  leaseMs: number;
  autoRenew: boolean;
  /** Ends the wait (the caller gave up, or the chain restarts); its reason is what the wait rejects with. */
  signal: AbortSignal;
  onQueued?: (position: number) => void;
}

/** What a master reports to the quorum: it went down (a command or probe failed) or came back. */
export interface MasterWatch {
  down(master: Master, error: FairLockError): void;
  up(master: Master): void;
  redisError(master: Master, event: FairLocksEvents['redisError'][0]): void;
  /** Master `master` says it is the server `runId`: throws InvalidArgumentError if another master said so first. */
  identified(master: Master, runId: string): void;
}

/**
 * One of the quorum's independent masters: its FairLocks (queues, heartbeats, wake-ups: the
 * single-node engine, unchanged), and what the chain adds around it: its identity (INFO run_id,
 * read before its first use), whether it is reachable (a probe while the quorum waits or holds on
 * it), and the four operations of DESIGN §8 on it: wait, tryTake, commit, release. Each is one
 * place where the engine's quorum entries plug in (floor, commit, the restart guard).
 */
export class Master {
  /** Known unreachable: skipped at once until a probe answers. */
  isDown = false;
  private runId: string | undefined;
  private identifying: Promise<void> | undefined;
  /** Waits and leases on this master: the probe runs while there is any (or while it is down). */
  private users = 0;
  /** Wait controllers by name: a failed heartbeat on a name ends the waits on it. */
  private readonly waits = new Map<string, Set<AbortController>>();
  private probing: Promise<unknown> | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly index: number,
    readonly locks: MasterLocks,
    private readonly seam: RedisSeam,
    /** guardMs: the restart guard asked of the master (rule 9), 0 for none (`restartGuard: false`). */
    private readonly timing: { commandTimeoutMs: number; heartbeatMs: number; guardMs: number },
    private readonly watch: MasterWatch,
  ) {
    locks.on('redisError', (event) => {
      watch.redisError(this, event);
      // Rule 3: a failed heartbeat to the master ends the waits on it (that name's), and the
      // probe looks at once whether the whole master is gone.
      if (event.operation !== 'heartbeat') return;
      const why = new MasterUnreachable(index, `a heartbeat failed (${String((event.error as Error)?.message ?? event.error)})`, event.error);
      for (const c of this.waits.get(event.name) ?? []) c.abort(why);
      this.probeNow();
    });
  }

  /**
   * Waits in this master's FIFO queue of `name` until granted (rule 3). Rejects with
   * MasterUnreachable when the enqueue fails or is not answered within commandTimeoutMs, when a
   * heartbeat to it fails, or when the probe finds it gone; with `o.signal`'s reason when that
   * aborts. Never because the wait is long. An abandoned wait is cancelled best effort, unawaited.
   */
  async wait(name: string, o: TakeOptions): Promise<Lease> {
    await this.ready();
    const ctl = new AbortController();
    const forward = () => ctl.abort(o.signal.reason);
    if (o.signal.aborted) throw o.signal.reason;
    o.signal.addEventListener('abort', forward, { once: true });
    let set = this.waits.get(name);
    if (!set) this.waits.set(name, (set = new Set()));
    set.add(ctl);
    this.use(+1);
    let answered = false;
    const pending = this.locks.lock(name).acquire({
      signal: ctl.signal,
      leaseMs: o.leaseMs,
      autoRenew: o.autoRenew,
      onQueued: (position) => {
        answered = true;
        o.onQueued?.(position);
      },
      [QUORUM_ACQUIRE]: this.quorumOption(o),
    });
    const noAnswer = setTimeout(() => {
      if (!answered) this.markDown(new MasterUnreachable(this.index, `its enqueue was not answered within ${this.timing.commandTimeoutMs} ms`));
    }, this.timing.commandTimeoutMs);
    try {
      return await Promise.race([pending, aborted(ctl.signal)]);
    } catch (err) {
      abandon(pending);
      if (ctl.signal.aborted) throw ctl.signal.reason;
      throw this.failure(err, 'its enqueue failed');
    } finally {
      clearTimeout(noAnswer);
      o.signal.removeEventListener('abort', forward);
      set.delete(ctl);
      if (set.size === 0 && this.waits.get(name) === set) this.waits.delete(name);
      this.use(-1);
    }
  }

  /** One attempt that never queues (tryAcquire on this master): a lease, or null when busy. */
  async tryTake(name: string, o: Omit<TakeOptions, 'signal' | 'onQueued'>): Promise<Lease | null> {
    await this.ready();
    const pending = this.locks.lock(name).tryAcquire({ leaseMs: o.leaseMs, autoRenew: o.autoRenew, [QUORUM_ACQUIRE]: this.quorumOption(o) });
    try {
      return await this.bounded(pending, 'its attempt');
    } catch (err) {
      abandon(pending);
      throw err;
    }
  }

  /**
   * Rule 4 and 5: "if `lease` is your holder: last = max(last, T), and renew" (the engine's commit
   * entry). True when the master acknowledged it as holder; false (it does not count) on "not
   * holder", an error or a timeout (a timeout also marks the master down).
   */
  async commit(lease: Lease, t: number): Promise<boolean> {
    try {
      // Every lease a master gives the chain is its FairLocks' HeldLease (wait and tryTake above).
      return await this.bounded((lease as HeldLease).commit(t), 'its commit');
    } catch {
      return false;
    }
  }

  /** Sets the lease on this master to end `ms` from now, bounded; false when it did not answer or no longer names it holder. */
  async extend(lease: Lease, ms: number): Promise<boolean> {
    try {
      await this.bounded(lease.extend(ms), 'extend');
      return lease.held;
    } catch {
      return false;
    }
  }

  /** Rule 8: gives the grant back, bounded; a failure is left to the lease's run-out (and to FairLocks' retry). */
  async release(lease: Lease): Promise<void> {
    await withTimeout(lease.release(), this.timing.commandTimeoutMs).catch(() => undefined);
  }

  /**
   * Gives the grant back passing `handover` (see QuorumLease's release), bounded: true when the
   * wake-up of the waiter it granted carried it; false otherwise, also on an error or a timeout.
   */
  async releaseHandingOver(lease: Lease, handover: string): Promise<boolean> {
    return withTimeout((lease as HeldLease).releaseHandingOver(handover), this.timing.commandTimeoutMs).catch(() => false);
  }

  /** The single-node LockInfo of `name` here, bounded by commandTimeoutMs. */
  inspect(name: string): Promise<LockInfo> {
    return this.bounded(this.locks.inspect(name), 'inspect');
  }

  /**
   * The engine's quorum arguments of one acquire here: the floor (0, nothing got yet, is sent as none)
   * and the restart guard, which lasts at least this acquire's own lease (a longer lease than the
   * quorum's leaseMs widens the guard it asks for; the guard must cover the longest lease any client
   * of the master takes, so quorums over the same masters should share one leaseMs).
   */
  private quorumOption(o: Pick<TakeOptions, 'floor' | 'leaseMs' | 'prev'>): QuorumAcquireOption {
    const { guardMs } = this.timing;
    return { floor: o.floor > 0 ? o.floor : undefined, guardMs: guardMs > 0 ? Math.max(guardMs, o.leaseMs) : 0, prev: o.prev };
  }

  /** Reads this master's run_id (INFO server) if not read yet; MasterUnreachable if it does not answer. */
  async ready(): Promise<void> {
    if (this.closed) throw new MasterUnreachable(this.index, 'the quorum is closed');
    if (this.isDown) throw new MasterUnreachable(this.index, 'it did not answer the last probe');
    if (this.runId !== undefined) return;
    this.identifying ??= this.identify().finally(() => (this.identifying = undefined));
    await this.identifying;
  }

  /** The master `ready()` read (undefined until then). */
  get serverRunId(): string | undefined {
    return this.runId;
  }

  /** A lease on this master is held: probe it meanwhile. Returns the undo. */
  hold(): () => void {
    this.use(+1);
    let done = false;
    return () => {
      if (!done) this.use(-1);
      done = true;
    };
  }

  /** Stops the probe; every later call fails. */
  stop(): void {
    this.closed = true;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    for (const set of this.waits.values()) for (const c of set) c.abort(new MasterUnreachable(this.index, 'the quorum is closed'));
  }

  private async identify(): Promise<void> {
    let info: unknown;
    try {
      info = await this.bounded(this.seam.send(['INFO', 'server'], ''), 'INFO server');
    } catch (err) {
      if (err instanceof MasterUnreachable) this.markDown(err);
      throw err;
    }
    const text = Buffer.isBuffer(info) ? info.toString() : String(info);
    const runId = /run_id:([0-9a-f]+)/.exec(text)?.[1];
    if (!runId) throw new InvalidArgumentError(`master ${this.index} did not report a run_id in INFO server: it must be a Redis (or Valkey) server of its own`);
    this.watch.identified(this, runId); // throws on a second client of one server
    this.runId = runId;
  }

  /** `work` within commandTimeoutMs; a timeout or a Redis error marks the master down (MasterUnreachable). */
  private async bounded<T>(work: Promise<T>, what: string): Promise<T> {
    let timedOut = false;
    try {
      return await withTimeout(work, this.timing.commandTimeoutMs, () => ((timedOut = true), new MasterUnreachable(this.index, `${what} was not answered within ${this.timing.commandTimeoutMs} ms`)));
    } catch (err) {
      const failure = timedOut ? (err as MasterUnreachable) : this.failure(err, `${what} failed`);
      if (failure instanceof MasterUnreachable) this.markDown(failure);
      throw failure;
    }
  }

  /** A FairLocks error of this master as the chain sees it: a Redis failure is this master unreachable. */
  private failure(err: unknown, what: string): FairLockError {
    const e = asFairLockError(err, what);
    if (e.code === 'REDIS_ERROR' && !(e instanceof MasterUnreachable)) return new MasterUnreachable(this.index, `${what}: ${e.message}`, e);
    return e;
  }

  /** Known unreachable: every wait on it ends, and the probe looks each heartbeatMs for it to answer again. */
  private markDown(err: FairLockError): void {
    if (this.closed) return;
    for (const set of this.waits.values()) for (const c of set) c.abort(err);
    if (this.isDown) return;
    this.isDown = true;
    this.watch.down(this, err);
    this.schedule();
  }

  private use(delta: number): void {
    this.users += delta;
    if (this.users > 0) this.schedule();
  }

  private probeNow(): void {
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.probe();
  }

  private schedule(): void {
    if (this.probeTimer || this.closed || (this.users <= 0 && !this.isDown)) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      this.probe();
    }, this.timing.heartbeatMs);
    this.probeTimer.unref();
  }

  /**
   * One PING at a time: one still unanswered after commandTimeoutMs marks the master down (a
   * stopped server answers nothing, and a client reconnecting to a dead one queues the command
   * instead of failing it); its late answer, or the next one, brings it back.
   */
  private probe(): void {
    if (this.closed) return;
    if (this.probing) {
      this.schedule();
      return;
    }
    const ping = this.seam.send(['PING'], '');
    const timer = setTimeout(() => this.markDown(new MasterUnreachable(this.index, `a PING was not answered within ${this.timing.commandTimeoutMs} ms`)), this.timing.commandTimeoutMs);
    this.probing = ping.then(
      () => {
        if (this.isDown && !this.closed) {
          this.isDown = false;
          this.watch.up(this);
        }
      },
      (err: unknown) => this.markDown(new MasterUnreachable(this.index, `a PING failed (${String((err as Error)?.message ?? err)})`, err)),
    ).finally(() => {
      clearTimeout(timer);
      this.probing = undefined;
      this.schedule();
    });
  }
}

/** Rejects with the signal's reason once it aborts. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** A wait or attempt nobody waits for any more: a grant it still brings is given back. */
export function abandon(pending: Promise<Lease | null>): void {
  pending.then(
    (lease) => lease?.release().catch(() => undefined),
    () => undefined,
  );
}
