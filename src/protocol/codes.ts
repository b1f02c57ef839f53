/**
 * Every code fairlock speaks, in one place: the `code` of each error it throws, and the first
 * element of each script's reply. The Lua scripts read the reply codes from a prelude generated
 * from REPLY (see scripts.ts), so the numbers are written nowhere else.
 */

/** The stable `code` of every {@link FairLockError}. */
export const ERROR_CODES = {
  /** acquire() did not succeed within timeoutMs; the waiter left the queue. */
  LOCK_TIMEOUT: 'LOCK_TIMEOUT',
  /** acquire()'s signal aborted; the waiter left the queue. */
  LOCK_ABORTED: 'LOCK_ABORTED',
  /** A lease can no longer be proven (deadline passed, Redis names others, Redis lost it). */
  LOCK_LOST: 'LOCK_LOST',
  /** An operation that needs a grant was called by something that does not hold it. */
  NOT_HOLDER: 'NOT_HOLDER',
  /** A bad argument; the message names it. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** The FairLocks instance was closed. */
  CLOSED: 'CLOSED',
  /** The busy name is used as another kind (lock, semaphore, read-write) or with another limit. */
  LIMIT_MISMATCH: 'LIMIT_MISMATCH',
  /** The request would wait for a grant its own scope holds (a write asked inside a read). */
  WOULD_DEADLOCK: 'WOULD_DEADLOCK',
  /** A key under the prefix is not what fairlock expects (wrong type or malformed); the message names it. */
  BAD_KEY: 'BAD_KEY',
  /** A grant did not reach `durability.replicas` replicas within `durability.timeoutMs`; it was released. */
  NOT_REPLICATED: 'NOT_REPLICATED',
  /** An optional peer dependency a call needs (e.g. `@opentelemetry/api` for `instrument()`) is not installed; the message names it. */
  MISSING_PEER: 'MISSING_PEER',
  /** Redis refused a command to this user (ACL). */
  NO_PERMISSION: 'NO_PERMISSION',
  /** The server lacks a command fairlock needs here (a wait on a Redis Cluster before 7.0: no SPUBLISH); the message names the version. */
  UNSUPPORTED_SERVER: 'UNSUPPORTED_SERVER',
  /**
   * A quorum lock (`FairLocks.quorum`) could not hold a majority of its masters: an acquire that restarted
   * at master 0 its `maxRestarts` times, or a tryAcquire that found too few masters reachable.
   */
  QUORUM_LOST: 'QUORUM_LOST',
  /** Redis failed the call or could not be reached. */
  REDIS_ERROR: 'REDIS_ERROR',
  /** A bug in fairlock: please report it. */
  INTERNAL: 'INTERNAL',
} as const;

/** The `code` of a {@link FairLockError}: one of the keys of {@link ERROR_CODES}. */
export type FairLockErrorCode = keyof typeof ERROR_CODES;

/** The first element of each script's reply. */
export const REPLY = {
  acquire: { busy: 0, granted: 1, queued: 2, refused: 4 },
  release: { notHolder: 0, released: 1, already: 2 },
  cancel: { notFound: 0, left: 1, already: 2, released: 3 },
  extend: { notHolder: 0, extended: 1 },
  commit: { notHolder: 0, committed: 1 },
} as const;

/** Prefixes of the errors the scripts raise themselves. */
export const LUA_ERRORS = { badKey: 'FAIRLOCK_BADKEY', badArg: 'FAIRLOCK_BADARG' } as const;

/** How many ids that gave a grant up a name's state keeps (its field `r`): a repeated release answers "already". */
export const RELEASES_KEPT = 8;

/**
 * The holder id of a quorum master's restart guard (see "Quorum" in lua/engine.lua): while a restarted
 * (or fresh) master must grant nothing on a name, this pseudo-holder holds it; inspect shows it.
 */
export const GUARD_ID = 'guard:0:0:0:1:w';

/** The longest handover a quorum release passes (see "Quorum" in lua/engine.lua); a longer one is not sent. */
export const MAX_HANDOVER = 4096;

/** `local REPLY_ACQUIRE_GRANTED = 1` ... and RELEASES_KEPT, GUARD_ID, MAX_HANDOVER, for the Lua prelude: the values are written nowhere else. */
export function luaReplyConstants(): string {
  const lines: string[] = [`local RELEASES_KEPT = ${RELEASES_KEPT}`, `local GUARD_ID = '${GUARD_ID}'`, `local MAX_HANDOVER = ${MAX_HANDOVER}`];
  for (const [script, codes] of Object.entries(REPLY)) {
    for (const [name, value] of Object.entries(codes)) {
      lines.push(`local REPLY_${script.toUpperCase()}_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()} = ${value}`);
    }
  }
  return lines.join('\n');
}
