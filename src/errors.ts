import type { FairLockErrorCode } from './protocol/codes.js';

export type { FairLockErrorCode } from './protocol/codes.js';

/** Every error fairlock throws is a FairLockError with a stable `code` (see FairLockErrorCode). */
export class FairLockError extends Error {
  /** Stable across versions: branch on this, not on the message or the class name. */
  readonly code: FairLockErrorCode;
  constructor(message: string, code: FairLockErrorCode = 'INTERNAL', options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The acquire did not succeed within `timeoutMs`; the waiter has left the queue (or its cancel is on its way when Redis is slower than 100 ms to answer it). */
export class LockTimeoutError extends FairLockError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'LOCK_TIMEOUT', options);
  }
}

/** The acquire's `signal` was aborted; the waiter has left the queue (or its cancel is on its way, as for LockTimeoutError). `cause` is the signal's reason. */
export class LockAbortedError extends FairLockError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'LOCK_ABORTED', options);
  }
}

/** The lease can no longer be proven: its deadline passed, Redis names another owner, or Redis lost it. */
export class LockLostError extends FairLockError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'LOCK_LOST', options);
  }
}

/** An operation that needs the lock was called by something that does not hold it. */
export class NotHolderError extends FairLockError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'NOT_HOLDER', options);
  }
}

/** A bad argument: the message names it. */
export class InvalidArgumentError extends FairLockError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'INVALID_ARGUMENT', options);
  }
}

/** The FairLocks instance was closed. */
export class ClosedError extends FairLockError {
  constructor(message = 'FairLocks is closed', options?: { cause?: unknown }) {
    super(message, 'CLOSED', options);
  }
}

/**
 * The name is busy as another kind (lock, semaphore, read-write lock) or with another limit: a busy
 * name keeps the kind and limit it has; an idle one takes the new ones.
 */
export class LimitMismatchError extends FairLockError {
  /** What Redis holds for the name, e.g. "semaphore 3". */
  readonly current: string;
  /** What this request asked for, e.g. "semaphore 2". */
  readonly requested: string;
  constructor(name: string, current: string, requested: { kind: string; limit: number; perGroup?: number | undefined }, options?: { cause?: unknown }) {
    const asked = `${requested.kind} ${requested.limit}${requested.perGroup === undefined ? '' : ` ${requested.perGroup}`}`;
    super(`"${name}" is busy as ${describeKind(current)}; this request asked for ${describeKind(asked)}`, 'LIMIT_MISMATCH', options);
    this.current = current;
    this.requested = asked;
  }
}

/** The request would wait for a grant its own `using()` scope holds (a write asked inside a read of the same name). */
export class WouldDeadlockError extends FairLockError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'WOULD_DEADLOCK', options);
  }
}

/**
 * `durability` was asked and the grant reached fewer replicas than required before the timeout: a
 * failover now could lose it, so fairlock released it rather than hand over a grant that may vanish.
 */
export class NotReplicatedError extends FairLockError {
  /** Replicas that acknowledged the grant (WAIT's answer). */
  readonly acked: number;
  /** Replicas `durability.replicas` asked for. */
  readonly required: number;
  constructor(what: string, acked: number, required: number, timeoutMs: number, options?: { cause?: unknown }) {
    super(`${what} was granted, but only ${acked} of the ${required} replicas asked for acknowledged it within ${timeoutMs} ms: the grant was released`, 'NOT_REPLICATED', options);
    this.acked = acked;
    this.required = required;
  }
}

/**
 * A quorum lock (`FairLocks.quorum`) could not hold a majority of its masters: too many were
 * unreachable, or lost while the acquire climbed the chain, through `maxRestarts` restarts.
 */
export class QuorumLostError extends FairLockError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'QUORUM_LOST', options);
  }
}

function describeKind(kindLimit: string): string {
  const [kind, limit, perGroup] = kindLimit.split(' ');
  if (kind === 'semaphore') return `a semaphore of ${limit} permits${perGroup ? `, at most ${perGroup} per group` : ''}`;
  if (kind === 'rw') return 'a read-write lock';
  if (kind === 'lock') return 'a lock';
  return JSON.stringify(kindLimit);
}

/** `err` as a FairLockError: itself if it is one, else a REDIS_ERROR saying what failed. */
export function asFairLockError(err: unknown, what: string): FairLockError {
  if (err instanceof FairLockError) return err;
  return new FairLockError(`${what}: ${String((err as Error)?.message ?? err)}`, 'REDIS_ERROR', { cause: err });
}
