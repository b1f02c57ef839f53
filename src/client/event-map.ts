import type { LockLostError } from '../errors.js';
import type { AbortedEvent, GrantedEvent, QueuedEvent, RedisErrorEvent, ReleasedEvent, TimeoutEvent } from './events.js';
import type { Lease } from './lease.js';

/** The events of FairLocks: `locks.on('granted', (e) => ...)`. */
export interface FairLocksEvents {
  /** A waiter of this instance entered the Redis queue. */
  queued: [event: QueuedEvent];
  /** A grant reached this instance. */
  granted: [event: GrantedEvent];
  /** Redis confirmed a release of this instance. */
  released: [event: ReleasedEvent];
  /** A lease this instance held was lost (its signal is aborted with the same error). */
  lost: [lease: Lease, error: LockLostError];
  /** An acquire of this instance gave up after its timeoutMs. */
  timeout: [event: TimeoutEvent];
  /** An acquire of this instance gave up because its signal aborted. */
  aborted: [event: AbortedEvent];
  /** A Redis call of this instance failed. */
  redisError: [event: RedisErrorEvent];
}

/** The name of an event of FairLocks. */
export type FairLocksEventName = keyof FairLocksEvents;

/**
 * Where the client code reports events (FairLocks implements it). Callers check `wants(event)`
 * first and build the payload only then, so nobody listening costs one listenerCount per event.
 * `fire` never throws: a throwing listener becomes a process warning.
 */
export interface EventSink {
  wants(event: FairLocksEventName): boolean;
  fire<E extends FairLocksEventName>(event: E, ...args: FairLocksEvents[E]): void;
}

/** A sink that nobody listens to (a session made without FairLocks, e.g. in tests). */
export const NO_EVENTS: EventSink = { wants: () => false, fire: () => undefined };

