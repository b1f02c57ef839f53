import type { Kind } from '../protocol/keys.js';

/** 'read' or 'write' on a read-write lock; undefined for a lock or a semaphore. */
export type EventMode = 'read' | 'write' | undefined;

/** A waiter of this process entered the Redis queue (not emitted when it was granted at once). */
export interface QueuedEvent {
  name: string;
  /** The waiter id ("session:seq:..."): the same id `granted`, `timeout` and `aborted` carry. */
  id: string;
  /** 1 = next. */
  position: number;
  kind: Kind;
  weight: number;
  mode: EventMode;
}

/** A grant reached this process: from `acquire()` (after a wait or at once), `tryAcquire()` or `using()`. */
export interface GrantedEvent {
  name: string;
  id: string;
  /** The fencing token. */
  token: number;
  /** From the call to the grant, on this process's monotonic clock (a round trip for an immediate grant). */
  waitedMs: number;
  kind: Kind;
  weight: number;
  mode: EventMode;
}

/** A lease of this process was released (after Redis confirmed it; a release that finds the lease lost emits `lost`). */
export interface ReleasedEvent {
  name: string;
  id: string;
  token: number;
  /** From the grant to the release() call, on this process's monotonic clock. */
  heldMs: number;
  kind: Kind;
  weight: number;
  mode: EventMode;
  /** performance.now() when release() was called (what the hand-off metric counts from). */
  releasedAt: number;
}

/** An acquire gave up after its `timeoutMs` (LockTimeoutError); the waiter has left the queue. */
export interface TimeoutEvent {
  name: string;
  id: string;
  waitedMs: number;
  kind: Kind;
}

/** An acquire gave up because its signal aborted (LockAbortedError); the waiter has left the queue. */
export interface AbortedEvent {
  name: string;
  id: string;
  waitedMs: number;
  /** The signal's reason. */
  reason: unknown;
  kind: Kind;
}

/** What fairlock was doing when Redis failed. */
export type RedisOperation = 'enqueue' | 'heartbeat' | 'release' | 'cancel';

/** A Redis call failed (the caller sees its own error too; a heartbeat retries on its next beat). */
export interface RedisErrorEvent {
  name: string;
  operation: RedisOperation;
  error: unknown;
}

/** The part of the event sink a lease uses (see EventSink in event-map.ts). */
export interface ReleaseSink {
  wants(event: 'released'): boolean;
  fire(event: 'released', payload: ReleasedEvent): void;
}

const MODES: Record<string, EventMode> = { x: undefined, r: 'read', w: 'write' };
/** 'x' | 'r' | 'w' as the events name it. */
export const eventMode = (mode: string): EventMode => MODES[mode];
