import { InvalidArgumentError } from './errors.js';

/** Options of a {@link FairLocks} instance. Every default is declared once, in {@link DEFAULTS}. */
export interface FairLocksOptions {
  /** Prefix of every key and channel. No braces. @default 'fairlock' */
  prefix?: string;
  /** Lease of a grant, renewed by the heartbeat while `autoRenew` is on. @default 5000 */
  leaseMs?: number;
  /** A waiter whose process has not beaten for this long is skipped as dead. At least 2 x heartbeatMs. @default 5000 */
  livenessMs?: number;
  /** Heartbeat period per lock this instance waits on or holds. @default 1000 */
  heartbeatMs?: number;
  /** Fraction of a lease kept as a safety margin for clock drift and timer lateness. @default 0.01 */
  driftFactor?: number;
  /** Default durability of every acquire (see {@link Durability}). @default { replicas: 0, timeoutMs: 1000 }: no WAIT */
  durability?: Durability;
}

/**
 * Durable grants: before `acquire()` resolves, `WAIT replicas timeoutMs` on the connection that ran
 * the grant (or, for a hand-off, the new holder's confirming beat) proves that `replicas` replicas
 * have it, so a failover to one of them keeps the grant. Fewer in time: the grant is released and the
 * call rejects with NotReplicatedError. WAIT holds that connection's later commands meanwhile.
 */
export interface Durability {
  /** Replicas that must have the grant: 0 turns WAIT off. */
  replicas: number;
  /** How long WAIT may take. @default 1000 */
  timeoutMs?: number;
}

/**
 * @internal The key of a quorum master's acquire option (see {@link QuorumAcquireOption}): a symbol,
 * so that no plain object a caller builds carries it by accident. Only src/quorum/master.ts sets it.
 */
export const QUORUM_ACQUIRE: unique symbol = Symbol('fairlock.quorumAcquire');

/**
 * @internal What the quorum's chain (DESIGN §8) adds to one acquire on one master: `floor`, the
 * grant's token is at least this (rule 2); `guardMs`, the restart guard (rule 9), 0 for none;
 * `prev`, a grant here the previous holder handed over (released first; see QuorumLease's release).
 * Absent, the acquire is the single-node one, byte for byte.
 */
export interface QuorumAcquireOption {
  floor: number | undefined;
  guardMs: number;
  prev?: string | undefined;
}

/** Options of one `acquire`, `tryAcquire` or `using` call. */
export interface AcquireOptions {
  /** Give up (LockTimeoutError) after this long in the queue. @default no timeout */
  timeoutMs?: number;
  /** Give up (LockAbortedError) when this signal aborts. */
  signal?: AbortSignal;
  /** Lease of this grant. @default the instance's leaseMs */
  leaseMs?: number;
  /** Renew the lease on every heartbeat while held. @default true */
  autoRenew?: boolean;
  /**
   * Inside `using()` of the same name, return a nested lease at once. It must ask for what the scope
   * holds (same kind, limit and mode; a weight at most the scope's), else it is refused at once. @default false
   */
  reentrant?: boolean;
  /** Called once the waiter is in the Redis queue, with its position (1 = next). */
  onQueued?: (position: number) => void;
  /** Replicas that must have the grant before it is returned. @default the instance's durability */
  durability?: Durability;
  /**
   * The group (tenant) this request takes turns in: groups with waiters are served in rotation, FIFO
   * inside each (README, "Fair share between groups"). A non-empty string of at most 256 UTF-8 bytes; not on a
   * read-write lock. @default the default group (what every request without a group shares)
   */
  group?: string;
  /** @internal Set by a quorum master only (src/quorum/master.ts). */
  [QUORUM_ACQUIRE]?: QuorumAcquireOption;
}

/** Options of one semaphore `acquire`, `tryAcquire` or `using` call. */
export interface SemaphoreAcquireOptions extends AcquireOptions {
  /** Permits to take: a positive integer, at most the semaphore's permits. @default 1 */
  weight?: number;
}

/** `locks.semaphore(name, options)`: the limit, and defaults for its acquires. */
export interface SemaphoreOptions extends SemaphoreAcquireOptions {
  /** How many permits may be held at once: a positive integer. Required. */
  permits: number;
  /**
   * The most permits one group may hold at once (weights counted), from 1 to `permits`; the default
   * group counts as one group. A group at its cap is passed over without holding others back. Part of
   * the name's limit, like `permits`. @default no cap
   */
  perGroup?: number;
}

/** The most permits a semaphore may have (weights and limits travel as integers through Lua). */
export const MAX_PERMITS = 1_000_000;

export type ResolvedOptions = Omit<Required<FairLocksOptions>, 'durability'> & { durability: ResolvedDurability | undefined };

/** Durability as the scripts take it; undefined when no replica is asked for. */
export interface ResolvedDurability {
  replicas: number;
  timeoutMs: number;
}

/** The default of every {@link FairLocksOptions} field, frozen. */
export const DEFAULTS: Readonly<Required<FairLocksOptions>> = Object.freeze({
  prefix: 'fairlock',
  leaseMs: 5_000,
  livenessMs: 5_000,
  heartbeatMs: 1_000,
  driftFactor: 0.01,
  durability: Object.freeze({ replicas: 0, timeoutMs: 1_000 }),
});

/** The most replicas `durability.replicas` may ask for. */
const MAX_REPLICAS = 1_000;

function resolveDurability(value: unknown, what: string): ResolvedDurability | undefined {
  const d = checkObject(value as Durability | undefined, what);
  if (d === undefined) return undefined;
  if (typeof d.replicas !== 'number' || !Number.isInteger(d.replicas) || d.replicas < 0 || d.replicas > MAX_REPLICAS) {
    throw new InvalidArgumentError(`${what}.replicas must be an integer from 0 to ${MAX_REPLICAS}, got ${describe(d.replicas)}`);
  }
  // WAIT's 0 means "for ever": a bounded wait is the point, so 0 is refused like any short duration.
  const timeoutMs = d.timeoutMs === undefined ? DEFAULTS.durability.timeoutMs! : checkDuration(d.timeoutMs, `${what}.timeoutMs`, 1);
  return d.replicas === 0 ? undefined : { replicas: d.replicas, timeoutMs };
}

/** The smallest duration fairlock accepts for a lease, liveness or heartbeat, in ms. */
const MIN_MS = 10;

/** Node timers fire at once beyond 2^31-1 ms (~24.8 days), so no duration may be longer. */
const MAX_MS = 2 ** 31 - 1;

/**
 * A short description of any value for an error message. Never throws: `String(value)` does for an
 * object without a prototype ("Cannot convert object to primitive value") or with a throwing toString.
 */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (value === null || typeof value !== 'object') {
    return typeof value === 'function' ? 'a function' : typeof value === 'symbol' ? 'a symbol' : `${value as number}`;
  }
  return Array.isArray(value) ? 'an array' : 'an object';
}

export function checkDuration(value: unknown, what: string, min = MIN_MS): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > MAX_MS) {
    throw new InvalidArgumentError(`${what} must be a finite number of milliseconds from ${min} to ${MAX_MS}, got ${describe(value)}`);
  }
  return Math.ceil(value);
}

/**
 * Names go to Redis as UTF-8. A lone surrogate has no UTF-8 form (it is sent as U+FFFD), so two
 * names that differ only there would share one lock: such names are refused.
 */
export function checkName(name: unknown, what = 'name'): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(`${what} must be a non-empty string, got ${typeof name === 'string' ? '""' : describe(name)}`);
  }
  if (LONE_SURROGATE.test(name)) {
    throw new InvalidArgumentError(`${what} must be well-formed UTF-16 (it holds a lone surrogate), got ${describe(name)}`);
  }
  return name;
}

/** In `u` mode a pair is one code point, so this matches only a surrogate that is not part of one. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** `undefined` or a plain object (not null, an array, a string...), else InvalidArgumentError naming `what`. */
export function checkObject<T extends object>(value: T | undefined, what: string): T | undefined {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new InvalidArgumentError(`${what} must be an object, got ${describe(value)}`);
  }
  return value;
}

export function resolveOptions(options: FairLocksOptions | undefined): ResolvedOptions {
  checkObject(options, 'options');
  const o = { ...DEFAULTS, ...stripUndefined(options ?? {}) };
  const prefix = checkName(o.prefix, 'options.prefix');
  if (/[{}\s]/.test(prefix)) throw new InvalidArgumentError(`options.prefix must not hold braces or spaces, got ${describe(prefix)}`);
  const heartbeatMs = checkDuration(o.heartbeatMs, 'options.heartbeatMs');
  const livenessMs = checkDuration(o.livenessMs, 'options.livenessMs');
  if (livenessMs < 2 * heartbeatMs) {
    throw new InvalidArgumentError(`options.livenessMs (${livenessMs}) must be at least 2 x options.heartbeatMs (${heartbeatMs})`);
  }
  const driftFactor = o.driftFactor;
  if (typeof driftFactor !== 'number' || !(driftFactor >= 0 && driftFactor < 0.5)) {
    throw new InvalidArgumentError(`options.driftFactor must be a number in [0, 0.5), got ${describe(driftFactor)}`);
  }
  const durability = resolveDurability(o.durability, 'options.durability');
  return { prefix, heartbeatMs, livenessMs, leaseMs: checkDuration(o.leaseMs, 'options.leaseMs'), driftFactor, durability };
}

export interface ResolvedAcquire {
  timeoutMs: number | undefined;
  signal: AbortSignal | undefined;
  leaseMs: number;
  autoRenew: boolean;
  reentrant: boolean;
  onQueued: ((position: number) => void) | undefined;
  /** Permits taken: 1 but for a semaphore. */
  weight: number;
  /** WAIT after the grant; undefined for none. */
  durability: ResolvedDurability | undefined;
  /** The group; undefined for the default group. */
  group: string | undefined;
  /** @internal A quorum master's floor and restart guard; undefined for a single-node acquire. */
  quorum: QuorumAcquireOption | undefined;
}

/** The most UTF-8 bytes of a group. */
export const MAX_GROUP_BYTES = 256;

/** A group: a non-empty, well-formed string of at most MAX_GROUP_BYTES UTF-8 bytes, else InvalidArgumentError. */
export function checkGroup(value: unknown, what = 'options.group'): string {
  const group = checkName(value, what);
  const bytes = Buffer.byteLength(group, 'utf8');
  if (bytes > MAX_GROUP_BYTES) throw new InvalidArgumentError(`${what} must be at most ${MAX_GROUP_BYTES} UTF-8 bytes, got ${bytes}`);
  return group;
}

/** A positive integer up to MAX_PERMITS, else InvalidArgumentError naming `what`. */
export function checkPermits(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_PERMITS) {
    throw new InvalidArgumentError(`${what} must be an integer from 1 to ${MAX_PERMITS}, got ${describe(value)}`);
  }
  return value;
}

/** `permits`: the semaphore's limit (weight is refused for anything else). */
export function resolveAcquire(options: SemaphoreAcquireOptions | undefined, defaults: ResolvedOptions, permits?: number): ResolvedAcquire {
  const o = checkObject(options, 'acquire options') ?? {};
  let weight = 1;
  if (o.weight !== undefined) {
    if (permits === undefined) throw new InvalidArgumentError('options.weight applies to semaphores only');
    weight = checkPermits(o.weight, 'options.weight');
    if (weight > permits) {
      throw new InvalidArgumentError(`options.weight (${weight}) is more than the semaphore's permits (${permits}): it could never be granted`);
    }
  }
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidArgumentError('options.signal must be an AbortSignal');
  }
  if (o.onQueued !== undefined && typeof o.onQueued !== 'function') {
    throw new InvalidArgumentError('options.onQueued must be a function');
  }
  for (const flag of ['autoRenew', 'reentrant'] as const) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') throw new InvalidArgumentError(`options.${flag} must be a boolean`);
  }
  return {
    timeoutMs: o.timeoutMs === undefined ? undefined : checkDuration(o.timeoutMs, 'options.timeoutMs', 0),
    signal,
    leaseMs: o.leaseMs === undefined ? defaults.leaseMs : checkDuration(o.leaseMs, 'options.leaseMs'),
    autoRenew: o.autoRenew ?? true,
    reentrant: o.reentrant ?? false,
    onQueued: o.onQueued,
    weight,
    durability: o.durability === undefined ? defaults.durability : resolveDurability(o.durability, 'options.durability'),
    group: o.group === undefined ? undefined : checkGroup(o.group),
    quorum: o[QUORUM_ACQUIRE],
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
