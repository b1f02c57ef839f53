import type { Kind } from '../protocol/keys.js';

/** 'read' or 'write' on a read-write lock; undefined for a lock or a semaphore. */
export type EventMode = 'read' | 'write' | undefined;

/** A waiter of this process entered the Redis queue (not emitted when it was granted at once). */
export interface QueuedEvent {
  /** The name the grant or wait is on. */
  name: string;
  /** The waiter id ("session:seq:..."): the same id `granted`, `timeout` and `aborted` carry. */
  id: string;
  /** 1 = next. */
  position: number;
  /** What the name is: a lock, a semaphore or a read-write lock. */
  kind: Kind;
  /** The request's group (`acquire({ group })`); undefined for the default group. */
  group: string | undefined;
  /** Permits asked or held: 1 but on a semaphore. */
  weight: number;
  /** The side of a read-write lock; undefined otherwise. */
  mode: EventMode;
}

/** A grant reached this process: from `acquire()` (after a wait or at once), `tryAcquire()` or `using()`. */
export interface GrantedEvent {
  /** The name the grant or wait is on. */
  name: string;
  /** The waiter id ("session:seq:..."), as `inspect()` and `lease.id` show it. */
  id: string;
  /** The fencing token. */
  token: number;
  /** From the call to the grant, on this process's monotonic clock (a round trip for an immediate grant). */
  waitedMs: number;
  /** What the name is: a lock, a semaphore or a read-write lock. */
  kind: Kind;
  /** The request's group (`acquire({ group })`); undefined for the default group. */
  group: string | undefined;
  /** Permits asked or held: 1 but on a semaphore. */
  weight: number;
  /** The side of a read-write lock; undefined otherwise. */
  mode: EventMode;
  /**
   * performance.now() when the grant reached this process (what the hand-off metric counts to; the
   * call was at `grantedAt - waitedMs`). A listener's own clock reads later, by as long as the
   * listeners before it took or the process was descheduled.
   */
  grantedAt: number;
}

/** A lease of this process was released (after Redis confirmed it; a release that finds the lease lost emits `lost`). */
export interface ReleasedEvent {
  /** The name the grant or wait is on. */
  name: string;
  /** The waiter id ("session:seq:..."), as `inspect()` and `lease.id` show it. */
  id: string;
  /** The fencing token. */
  token: number;
  /** From the grant to the release() call, on this process's monotonic clock. */
  heldMs: number;
  /** What the name is: a lock, a semaphore or a read-write lock. */
  kind: Kind;
  /** The request's group (`acquire({ group })`); undefined for the default group. */
  group: string | undefined;
  /** Permits asked or held: 1 but on a semaphore. */
  weight: number;
  /** The side of a read-write lock; undefined otherwise. */
  mode: EventMode;
  /** performance.now() when release() was called (what the hand-off metric counts from). */
  releasedAt: number;
}

/** An acquire gave up after its `timeoutMs` (LockTimeoutError); the waiter has left the queue (or its cancel is on its way). */
export interface TimeoutEvent {
  /** The name the grant or wait is on. */
  name: string;
  /** The waiter id ("session:seq:..."), as `inspect()` and `lease.id` show it. */
  id: string;
  /** From the call until it gave up, on this process's monotonic clock. */
  waitedMs: number;
  /** What the name is: a lock, a semaphore or a read-write lock. */
  kind: Kind;
  /** The request's group (`acquire({ group })`); undefined for the default group. */
  group: string | undefined;
}

/** An acquire gave up because its signal aborted (LockAbortedError); the waiter has left the queue (or its cancel is on its way). */
export interface AbortedEvent {
  /** The name the grant or wait is on. */
  name: string;
  /** The waiter id ("session:seq:..."), as `inspect()` and `lease.id` show it. */
  id: string;
  /** From the call until it gave up, on this process's monotonic clock. */
  waitedMs: number;
  /** The signal's reason. */
  reason: unknown;
  /** What the name is: a lock, a semaphore or a read-write lock. */
  kind: Kind;
  /** The request's group (`acquire({ group })`); undefined for the default group. */
  group: string | undefined;
}

/** What fairlock was doing when Redis failed. */
export type RedisOperation = 'enqueue' | 'heartbeat' | 'release' | 'cancel';

/** A Redis call failed (the caller sees its own error too; a heartbeat retries on its next beat). */
export interface RedisErrorEvent {
  /** The name the grant or wait is on. */
  name: string;
  /** What fairlock was doing. */
  operation: RedisOperation;
  /** The error the call failed with. */
  error: unknown;
}

const MODES: Record<string, EventMode> = { x: undefined, r: 'read', w: 'write' };
/** 'x' | 'r' | 'w' as the events name it. */
export const eventMode = (mode: string): EventMode => MODES[mode];
