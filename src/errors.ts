/** Every error fairlock throws is a FairLockError with a stable string `code`. */
export class FairLockError extends Error {
  readonly code: string;
  constructor(message: string, code = 'FAIRLOCK_ERROR', options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The acquire did not succeed within `timeoutMs`; the waiter has left the queue. */
export class LockTimeoutError extends FairLockError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'LOCK_TIMEOUT', options);
  }
}

/** The acquire's `signal` was aborted; the waiter has left the queue. `cause` is the signal's reason. */
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
