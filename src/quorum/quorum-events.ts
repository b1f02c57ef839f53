import type { RedisErrorEvent } from '../client/events.js';
import type { Lease } from '../client/lease.js';
import type { FairLockError, LockLostError } from '../errors.js';

/** An acquire of a quorum lock entered the queue of one master (each master it queues on: one event). */
export interface QuorumQueuedEvent {
  /** The lock's name. */
  name: string;
  /** The quorum acquire's id (its lease's id). */
  id: string;
  /** The index of the master, in the order given to `FairLocks.quorum`. */
  master: number;
  /** 1 = next on that master. */
  position: number;
}

/** A quorum acquire holds a majority and entered its critical section. */
export interface QuorumGrantedEvent {
  /** The lock's name. */
  name: string;
  /** The lease's id. */
  id: string;
  /** The fencing token the lease carries (T, the highest its masters granted). */
  token: number;
  /** From the call to the grant, on this process's monotonic clock. */
  waitedMs: number;
  /** The masters it holds, by index. */
  masters: number[];
  /** How many times it gave everything back and started again at master 0. */
  restarts: number;
}

/** A quorum lease was released (every master it held was released, or handed over to the waiter it granted: see README, "Quorum over independent masters"). */
export interface QuorumReleasedEvent {
  /** The lock's name. */
  name: string;
  /** The lease's id. */
  id: string;
  /** The lease's fencing token. */
  token: number;
  /** From the grant to the release() call, on this process's monotonic clock. */
  heldMs: number;
}

/** A quorum acquire gave up: after its `timeoutMs` (`timeout`) or because its signal aborted (`aborted`, with `reason`). */
export interface QuorumGiveUpEvent {
  /** The lock's name. */
  name: string;
  /** The acquire's id. */
  id: string;
  /** From the call until it gave up, on this process's monotonic clock. */
  waitedMs: number;
  /** The signal's reason (`aborted` only). */
  reason?: unknown;
}

/** A Redis call to one master failed (as FairLocks reports it), with the master's index. */
export interface QuorumRedisErrorEvent extends RedisErrorEvent {
  /** The index of the master. */
  master: number;
}

/** One master became unreachable (a command or probe failed or was not answered in time) or answered again. */
export interface MasterStateEvent {
  /** The index of the master. */
  master: number;
  /** Why it counts as down (`masterDown` only). */
  error?: FairLockError;
}

/** The events of a quorum: `quorum.on('granted', (e) => ...)`. */
export interface QuorumEvents {
  /** An acquire entered one master's queue. */
  queued: [event: QuorumQueuedEvent];
  /** An acquire holds a majority. */
  granted: [event: QuorumGrantedEvent];
  /** A lease was released. */
  released: [event: QuorumReleasedEvent];
  /** A lease could no longer count a majority (its signal is aborted with the same error). */
  lost: [lease: Lease, error: LockLostError];
  /** An acquire gave up after its timeoutMs. */
  timeout: [event: QuorumGiveUpEvent];
  /** An acquire gave up because its signal aborted. */
  aborted: [event: QuorumGiveUpEvent];
  /** A Redis call to a master failed. */
  redisError: [event: QuorumRedisErrorEvent];
  /** A master counts as unreachable: the chain skips it until it answers a probe. */
  masterDown: [event: MasterStateEvent];
  /** A master that was down answered a probe. */
  masterUp: [event: MasterStateEvent];
}

/** The name of an event of a quorum. */
export type QuorumEventName = keyof QuorumEvents;

/** Where the quorum's parts report events; `fire` never throws. */
export interface QuorumSink {
  wants(event: QuorumEventName): boolean;
  fire<E extends QuorumEventName>(event: E, ...args: QuorumEvents[E]): void;
}
