/** What `inspect()` reports about one name (FairLocks, and per master a quorum's). */
import type { Kind } from '../protocol/keys.js';

/** One grant as `inspect()` reports it. */
export interface HolderInfo {
  /** The grant's waiter id, "session:seq:...": its first part is the holder's {@link FairLocks.sessionId}. */
  id: string;
  /** The grant's fencing token. */
  token: number;
  /** Redis time left on the lease, in ms (for a hand-off not yet confirmed: the most it may use). */
  leaseLeftMs: number;
  /**
   * How long it has held, in ms on Redis's clock: since the grant (for a hand-off: since the holder
   * confirmed it, which starts its lease), or since its last `extend()`, which starts the lease again.
   */
  heldMs: number;
  /** Permits held: 1 for a lock and for either side of a read-write lock. */
  weight: number;
  /** 'read' or 'write' on a read-write lock; undefined otherwise. */
  mode: 'read' | 'write' | undefined;
  /** The group the grant was taken in; undefined for the default group. */
  group: string | undefined;
}

/** One group as `inspect()` reports it: what it holds and how many of it wait. */
export interface GroupInfo {
  /** The group; undefined for the default group (requests that name none). */
  group: string | undefined;
  /** Permits its grants hold (weights counted; 1 per grant of a lock). */
  held: number;
  /** Its live waiters (of the 10,000 `inspect()` reads). */
  waiting: number;
  /** Passed over at its `perGroup` cap: it keeps its place and takes its turn once a grant of it ends. */
  capped: boolean;
}

/** One live waiter as `inspect()` reports it. */
export interface WaiterInfo {
  /** The waiter's id, "session:seq:...": its first part is the waiting {@link FairLocks.sessionId}. */
  id: string;
  /** 1 = next of its group (with no groups in use: next of all). */
  position: number;
  /** The group it waits in; undefined for the default group. */
  group: string | undefined;
  /** How long it has been queued, on Redis's clock, in ms. */
  waitedMs: number;
  /** Permits asked: 1 for a lock and for either side of a read-write lock. */
  weight: number;
  /** 'read' or 'write' on a read-write lock; undefined otherwise. */
  mode: 'read' | 'write' | undefined;
}

/** What `inspect()` reports about one name. */
export interface LockInfo {
  /** What the name is in Redis now; undefined when Redis knows nothing of it. */
  kind: Kind | undefined;
  /** Permits of a semaphore, 1 for a lock, undefined for a read-write lock or an unknown name. */
  limit: number | undefined;
  /** A semaphore's cap per group, undefined for none. */
  perGroup: number | undefined;
  /** Permits free now (limit - held weights); undefined for a read-write lock or an unknown name. */
  available: number | undefined;
  /** Every grant, oldest token first. */
  holders: HolderInfo[];
  /** The first of `holders` (for a plain lock: the holder), or null. */
  holder: HolderInfo | null;
  /** The live waiters (dead ones left out), at most 10,000: in queue order, and while groups take turns, group by group in rotation order. */
  queue: WaiterInfo[];
  /**
   * The groups that wait or hold: those with waiters first, in rotation order (the front takes the
   * next turn), then those that only hold. The default group is among them when it waits or holds.
   */
  groups: GroupInfo[];
  /**
   * The ids ({@link HolderInfo.id}) of the last grants given back (released, or given up by a waiter
   * granted as it left), newest first; Redis keeps the last 8, and a grant whose lease ran out is not
   * listed. An id names one grant: comparing two calls counts the grants made in between (all of
   * them while at most 8 were given back; `fairlock top`'s grants per second).
   */
  recentReleases: string[];
}
