import { EventEmitter } from 'node:events';
import { ClosedError, InvalidArgumentError } from './errors.js';
import { FairLock } from './fair-lock.js';
import { lockKeys, wakeChannel } from './keys.js';
import type { Lease } from './lease.js';
import { checkName, checkObject, describe, resolveOptions, type AcquireOptions, type FairLocksOptions } from './options.js';
import { adaptClient } from './redis/adapt.js';
import type { RedisClientLike } from './redis/seam.js';
import { Scripts } from './scripts.js';
import { Session } from './session.js';
import { Wakeups } from './wakeups.js';

/** Waits for `p` (never rejects) but no longer than `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

function describeError(err: unknown): string {
  try {
    return err instanceof Error ? `${err.name}: ${err.message}` : describe(err);
  } catch {
    return 'an unprintable value';
  }
}

/** What `inspect()` reports about one lock. */
export interface LockInfo {
  holder: { id: string; token: number; leaseLeftMs: number } | null;
  queue: { id: string; position: number; waitedMs: number }[];
}

export interface FairLocksEvents {
  /** A lease this instance held was lost (its signal is aborted with the same error). */
  lost: [lease: Lease, error: Error];
}

/** The most queue entries `inspect()` returns. */
const INSPECT_LIMIT = 10_000;

/**
 * The entry point: one per process is typical. Takes a connected node-redis v4 client (left open on
 * close), makes its own subscriber with `client.duplicate()`, and owns one session.
 */
export class FairLocks extends EventEmitter<FairLocksEvents> {
  private readonly session: Session;
  private readonly wakeups: Wakeups;
  private closing: Promise<void> | undefined;

  constructor(client: RedisClientLike, options?: FairLocksOptions) {
    super({ captureRejections: true }); // an async listener that rejects reaches the method below, not the host
    const redis = adaptClient(client);
    const resolved = resolveOptions(options);
    const scripts = new Scripts(redis, resolved.prefix);
    // A throwing listener must neither break the heartbeat or the deadline timer that reports the
    // loss, nor crash the host: it becomes a process warning.
    const emitLost = (lease: Lease, err: Error) => {
      try {
        this.emit('lost', lease, err);
      } catch (listenerErr) {
        process.emitWarning(`a 'lost' listener of FairLocks threw: ${describeError(listenerErr)}`, 'FairLockWarning');
      }
    };
    this.session = new Session(scripts, resolved, emitLost);
    this.wakeups = new Wakeups(
      redis,
      wakeChannel(resolved.prefix, this.session.id),
      (message) => this.session.onWake(message),
      () => this.session.beatAll(),
    );
  }

  /** @internal A listener's rejected promise (captureRejections): a warning, never a crash. */
  override [EventEmitter.captureRejectionSymbol](err: Error, event: unknown, ..._args: unknown[]): void {
    process.emitWarning(`a '${String(event)}' listener of FairLocks rejected: ${describeError(err)}`, 'FairLockWarning');
  }

  /** This instance's session id: the first part of every waiter and holder id it creates. */
  get sessionId(): string {
    return this.session.id;
  }

  /** A handle on the lock `name`; `options` are defaults for its acquires. No I/O. */
  lock(name: string, options?: AcquireOptions): FairLock {
    this.internals();
    return new FairLock(this, checkName(name), checkObject(options, 'lock options'));
  }

  /** The holder and the live queue of `name`, in order. */
  async inspect(name: string): Promise<LockInfo> {
    const { session } = this.internals();
    const reply = await session.scripts.inspect(lockKeys(session.options.prefix, checkName(name)), INSPECT_LIMIT);
    return {
      holder: reply.owner ? { id: reply.owner.id, token: reply.owner.token, leaseLeftMs: Math.max(0, reply.owner.exp - reply.now) } : null,
      queue: reply.queue.map((e, i) => ({ id: e.id, position: i + 1, waitedMs: Math.max(0, reply.now - Math.floor(e.ticket / 1000)) })),
    };
  }

  /** Stops timers, cancels this instance's waits (ClosedError), releases its leases, quits the subscriber. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** @internal the parts FairLock needs; throws ClosedError once closed. */
  internals(): { session: Session; wakeups: Wakeups } {
    if (this.closing) throw new ClosedError('this FairLocks instance is closed');
    return { session: this.session, wakeups: this.wakeups };
  }

  private async shutdown(): Promise<void> {
    const states = [...this.session.locks.values()];
    const waiters = states.flatMap((s) => [...s.waiters.values()]);
    const leases = states.flatMap((s) => [...s.leases]);
    // Bounded like a give-up: while Redis does not answer, close() still returns after about one
    // liveness period (the releases still run if Redis comes back; unreleased leases run out).
    const bound = this.session.options.livenessMs;
    await within(
      Promise.all([
        ...waiters.map((w) => w.giveUp(new ClosedError(`FairLocks closed while waiting for the lock "${w.state.name}"`))),
        ...leases.map((l) => l.release().catch(() => undefined)),
      ]),
      bound,
    );
    this.session.stop();
    await this.wakeups.close(bound);
  }
}
