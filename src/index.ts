export { FairLocks, type LockInfo, type FairLocksEvents } from './fair-locks.js';
export { FairLock } from './fair-lock.js';
export { Lease } from './lease.js';
export { DEFAULTS, type FairLocksOptions, type AcquireOptions } from './options.js';
export {
  FairLockError,
  LockTimeoutError,
  LockAbortedError,
  LockLostError,
  NotHolderError,
  InvalidArgumentError,
  ClosedError,
} from './errors.js';
