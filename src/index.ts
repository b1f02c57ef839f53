export {
  FairLocks,
  type LockInfo,
  type HolderInfo,
  type WaiterInfo,
  type GroupInfo,
  type FairLocksEvents,
  type FairLocksEventName,
  type QueuedEvent,
  type EventMode,
  type GrantedEvent,
  type ReleasedEvent,
  type TimeoutEvent,
  type AbortedEvent,
  type RedisErrorEvent,
  type RedisOperation,
} from './fair-locks.js';
export type { FairLock } from './primitives/lock.js';
export type { QuorumLocks, QuorumLockInfo, MasterInfo } from './quorum/quorum-locks.js';
export type { QuorumLock, QuorumAcquireOptions } from './quorum/quorum-lock.js';
export type { QuorumLease } from './quorum/quorum-lease.js';
export { QUORUM_DEFAULTS, type QuorumOptions } from './quorum/quorum-options.js';
export type {
  QuorumEvents,
  QuorumEventName,
  QuorumQueuedEvent,
  QuorumGrantedEvent,
  QuorumReleasedEvent,
  QuorumGiveUpEvent,
  QuorumRedisErrorEvent,
  MasterStateEvent,
} from './quorum/quorum-events.js';
export type { FairSemaphore } from './primitives/semaphore.js';
export type { FairReadWriteLock } from './primitives/read-write.js';
export type { Lease } from './client/lease.js';
export type { Kind } from './protocol/keys.js';
export type { RedisClientLike, NodeRedisClientLike, NodeRedisClusterLike, IORedisClientLike, GlideClientLike } from './redis/seam.js';
export {
  DEFAULTS,
  MAX_PERMITS,
  type FairLocksOptions,
  type AcquireOptions,
  type SemaphoreAcquireOptions,
  type SemaphoreOptions,
  type Durability,
} from './options.js';
export {
  FairLockError,
  LockTimeoutError,
  LockAbortedError,
  LockLostError,
  NotHolderError,
  InvalidArgumentError,
  ClosedError,
  LimitMismatchError,
  WouldDeadlockError,
  NotReplicatedError,
  QuorumLostError,
  type FairLockErrorCode,
} from './errors.js';
export { ERROR_CODES } from './protocol/codes.js';
export { instrument, OTHER_NAME, OTHER_GROUP, type MetricsOptions, type MeterLike, type MetricAttributes, type Instrumentation } from './metrics.js';
