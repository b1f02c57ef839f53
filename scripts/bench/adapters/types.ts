/**
 * The one interface every benchmarked lock sits behind. One `LockClient` per process (or per
 * simulated process in the latency runs): its own Redis connection(s), shared by its contenders.
 */
export interface Held {
  release(): Promise<void>;
  /** The fencing token, if the library has one (fairlock: strictly increasing in grant order). */
  token?: number;
}

export interface AcquireHooks {
  /** Called when the library says the caller is in its queue (fairlock's onQueued), if it has one. */
  onQueued?: (position: number) => void;
}

/** What a semaphore request carries besides its hooks. */
export interface SemaphoreRequest extends AcquireHooks {
  /** fairlock: the group (tenant) the request takes turns in (DESIGN §7); none = the default group. Others: ignored. */
  group?: string;
}

export interface LockClient {
  /** Blocks until `name` is held (peers with a retry limit are retried until they get it). */
  acquire(name: string, hooks?: AcquireHooks): Promise<Held>;
  /** One permit of the counting semaphore `name` of `permits` permits (Adapter.kinds has 'semaphore'). */
  semaphore?(name: string, permits: number, request?: SemaphoreRequest): Promise<Held>;
  /** One side of the read-write lock `name` (Adapter.kinds has 'rw'). */
  readWrite?(name: string, mode: 'read' | 'write', hooks?: AcquireHooks): Promise<Held>;
  /** One PING on this library's own client: the floor its latencies are compared with. */
  ping(): Promise<void>;
  /** Graceful: releases what it holds, closes its connections. */
  close(): Promise<void>;
  /** Abandons waits in flight (they reject or never resolve) and drops the connections at once. */
  destroy(): Promise<void>;
}

export interface Adapter {
  id: string;
  /** What the library is and how it is configured here, for the report. */
  label: string;
  client: string;
  /** How a waiter learns the lock is free. */
  wakeup: string;
  /** Calls `onQueued` once a waiter is in its queue, so a bench can tell when enqueuing is over. */
  reportsQueued?: boolean;
  /** What else the library offers besides a lock, each behind a LockClient method, and how it does it. */
  kinds?: { semaphore?: string; rw?: string };
  create(url: string, prefix: string): Promise<LockClient>;
  /** Loads what create() loads lazily, so that a worker's first timed run does not pay for it. */
  warm?(): Promise<void>;
}

/** Thrown into the retry loops of polling adapters once their client is destroyed. */
export class Destroyed extends Error {
  constructor() {
    super('lock client destroyed');
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
