/**
 * OpenTelemetry metrics for a FairLocks instance, built on its events. `@opentelemetry/api` is an
 * optional peer dependency: this module only imports it (dynamically) when `instrument()` is called
 * without a meter, so a user who never calls it needs no such package. Without a registered meter
 * provider the global API hands out no-op instruments: nothing is recorded.
 */
import type { FairLocks } from './fair-locks.js';
import type { FairLocksEvents } from './client/event-map.js';
import { FairLockError, InvalidArgumentError } from './errors.js';
import { checkObject, describe } from './options.js';

/**
 * The attributes of a fairlock metric point: `name` and `kind` (redis errors: `name` and `operation`),
 * and `group` for a request that named one (the default group has no `group` attribute).
 */
export type MetricAttributes = Record<string, string>;

/** The parts of an OpenTelemetry `Meter` fairlock uses (structural: no type import of @opentelemetry/api). */
export interface MeterLike {
  /** Makes a histogram (an OpenTelemetry `Meter` has it). */
  createHistogram(name: string, options?: { unit?: string; description?: string }): {
    /** Records one value. */
    record(value: number, attributes?: MetricAttributes): void;
  };
  /** Makes a counter (an OpenTelemetry `Meter` has it). */
  createCounter(name: string, options?: { unit?: string; description?: string }): {
    /** Adds to the count. */
    add(value: number, attributes?: MetricAttributes): void;
  };
  /** Makes an observable gauge (an OpenTelemetry `Meter` has it). */
  createObservableGauge(name: string, options?: { unit?: string; description?: string }): {
    /** Registers the callback that observes the gauge at collection time. */
    addCallback(cb: (result: { observe(value: number, attributes?: MetricAttributes): void }) => void): void;
    /** Removes a callback added before. */
    removeCallback(cb: (result: { observe(value: number, attributes?: MetricAttributes): void }) => void): void;
  };
}

/** Options of `instrument()`. */
export interface MetricsOptions {
  /** The meter to record with. @default metrics.getMeter('fairlock') of @opentelemetry/api (the global provider) */
  meter?: MeterLike;
  /** The most distinct lock names recorded as themselves; names seen after them are recorded as "other". @default 100 */
  maxNames?: number;
  /**
   * The most distinct groups recorded as themselves (the `group` attribute); groups seen after them
   * are recorded as "other" (OTHER_GROUP). Requests without a group carry no `group` attribute. @default 100
   */
  maxGroups?: number;
}

/** What `instrument()` returns: `stop()` removes its listeners and its gauge callback. */
export interface Instrumentation {
  /** Stops recording: removes the listeners and the gauge callback. */
  stop(): void;
}

/** The name attribute's value for names beyond the cardinality guard. */
export const OTHER_NAME = 'other';

/** The group attribute's value for groups beyond the cardinality guard (`maxGroups`). */
export const OTHER_GROUP = 'other';

const METER_METHODS = ['createHistogram', 'createCounter', 'createObservableGauge'] as const;

function isMeter(value: unknown): value is MeterLike {
  return typeof value === 'object' && value !== null && METER_METHODS.every((m) => typeof (value as Record<string, unknown>)[m] === 'function');
}

/**
 * `metrics.getMeter('fairlock')` of the optional peer `@opentelemetry/api`. Not installed: a
 * FairLockError MISSING_PEER saying what to install, never Node's raw ERR_MODULE_NOT_FOUND.
 */
async function globalMeter(): Promise<MeterLike> {
  let api: { metrics?: { getMeter?: (name: string) => unknown } };
  try {
    api = (await import('@opentelemetry/api')) as typeof api;
  } catch (err) {
    const code = (err as { code?: unknown })?.code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    throw new FairLockError(
      missing
        ? 'instrument() without options.meter needs the optional peer dependency @opentelemetry/api, which is not installed: npm install @opentelemetry/api (or pass options.meter)'
        : `instrument() without options.meter could not load @opentelemetry/api: ${String((err as Error)?.message ?? err)}`,
      'MISSING_PEER',
      { cause: err },
    );
  }
  const meter = typeof api.metrics?.getMeter === 'function' ? api.metrics.getMeter('fairlock') : undefined;
  if (!isMeter(meter)) throw new FairLockError('@opentelemetry/api gave no usable meter: install @opentelemetry/api 1.x (or pass options.meter)', 'MISSING_PEER');
  return meter;
}

/**
 * Records fairlock's metrics for `locks` (see README, "Events and metrics"). Listens to the events
 * of `locks`, so each event's payload is built only while instrumented.
 */
export async function instrument(locks: FairLocks, options?: MetricsOptions): Promise<Instrumentation> {
  const o = checkObject(options, 'metrics options') ?? {};
  const maxNames = o.maxNames ?? 100;
  if (!Number.isInteger(maxNames) || maxNames < 0) throw new InvalidArgumentError(`options.maxNames must be a non-negative integer, got ${describe(maxNames)}`);
  const maxGroups = o.maxGroups ?? 100;
  if (!Number.isInteger(maxGroups) || maxGroups < 0) throw new InvalidArgumentError(`options.maxGroups must be a non-negative integer, got ${describe(maxGroups)}`);
  if (o.meter !== undefined && !isMeter(o.meter)) {
    throw new InvalidArgumentError(`options.meter must be an OpenTelemetry Meter (createHistogram, createCounter, createObservableGauge), got ${describe(o.meter)}`);
  }
  const meter = o.meter ?? (await globalMeter());

  /** The first `max` distinct values seen are recorded as themselves, later ones as `other`: bounded memory and cardinality. */
  const bounded = (max: number, other: string) => {
    const known = new Set<string>();
    return (value: string): string => {
      if (known.has(value)) return value;
      if (known.size < max) {
        known.add(value);
        return value;
      }
      return other;
    };
  };
  const nameOf = bounded(maxNames, OTHER_NAME);
  const groupOf = bounded(maxGroups, OTHER_GROUP);
  /** `name` and `kind`, and `group` unless the request was of the default group. */
  const attributes = (name: string, kind: string, group: string | undefined): MetricAttributes =>
    group === undefined ? { name: nameOf(name), kind } : { name: nameOf(name), kind, group: groupOf(group) };

  const wait = meter.createHistogram('fairlock.wait', { unit: 'ms', description: 'From an acquire call to its grant, in this process' });
  const hold = meter.createHistogram('fairlock.hold', { unit: 'ms', description: 'From a grant to its release() call' });
  const handoff = meter.createHistogram('fairlock.handoff', {
    unit: 'ms',
    description: 'From a release() call in this process to the next grant, in this process, of a waiter queued before it',
  });
  const grants = meter.createCounter('fairlock.grants', { description: 'Grants this process received' });
  const losses = meter.createCounter('fairlock.losses', { description: 'Leases this process lost' });
  const timeouts = meter.createCounter('fairlock.timeouts', { description: 'Acquires that gave up after timeoutMs' });
  const aborts = meter.createCounter('fairlock.aborts', { description: 'Acquires that gave up on their signal' });
  const redisErrors = meter.createCounter('fairlock.redis_errors', { description: 'Failed Redis calls' });
  const queue = meter.createObservableGauge('fairlock.queue.length', { description: "This process's own waiters per name (local state, no Redis call)" });

  // Hand-off: the last release() call per name, and the last grant per name of a waiter that began
  // waiting before it. The grant's wake-up may arrive before the release's reply: either order pairs.
  // Keyed like the attributes (names beyond maxNames share "other", whose entry says whose it is), and
  // dropped once they can pair with nothing more: so at most maxNames + 1 entries, whatever the names.
  const released = new Map<string, { name: string; at: number }>();
  const grantedAfter = new Map<string, { name: string; at: number; startedAt: number }>();
  const pair = (key: string, name: string, attrs: MetricAttributes): void => {
    const r = released.get(key);
    const g = grantedAfter.get(key);
    if (r?.name !== name || g?.name !== name) return;
    if (g.startedAt <= r.at && g.at >= r.at) {
      handoff.record(g.at - r.at, attrs);
      released.delete(key);
      grantedAfter.delete(key);
    } else if (g.at < r.at) grantedAfter.delete(key);
  };

  const listeners: { [E in keyof FairLocksEvents]?: (...args: FairLocksEvents[E]) => void } = {
    granted: (e) => {
      const attrs = attributes(e.name, e.kind, e.group);
      const key = attrs.name!;
      wait.record(e.waitedMs, attrs);
      grants.add(1, attrs);
      // The event's own stamps, not this listener's clock: the process may be descheduled between the
      // grant and this listener by longer than the waiter waited before the release it pairs with.
      grantedAfter.set(key, { name: e.name, at: e.grantedAt, startedAt: e.grantedAt - e.waitedMs });
      pair(key, e.name, attrs);
    },
    released: (e) => {
      const attrs = attributes(e.name, e.kind, e.group);
      const key = attrs.name!;
      hold.record(e.heldMs, attrs);
      released.set(key, { name: e.name, at: e.releasedAt });
      pair(key, e.name, attrs);
      // Only a waiter of this process queued now can still be granted after this release: without
      // one, the entry could pair with nothing (and would keep the name alive).
      if (released.get(key)?.name === e.name && !locks.hasLocalWaiters(e.name)) released.delete(key);
    },
    lost: (lease) => losses.add(1, attributes(lease.name, lease.kind, lease.group)),
    timeout: (e) => timeouts.add(1, attributes(e.name, e.kind, e.group)),
    aborted: (e) => aborts.add(1, attributes(e.name, e.kind, e.group)),
    redisError: (e) => redisErrors.add(1, { name: nameOf(e.name), operation: e.operation }),
  };
  const on = locks.on.bind(locks) as (event: string, fn: (...args: never[]) => void) => unknown;
  const off = locks.off.bind(locks) as (event: string, fn: (...args: never[]) => void) => unknown;
  for (const [event, fn] of Object.entries(listeners)) on(event, fn as (...args: never[]) => void);

  // At collection time, from this process's own state: no Redis call, so collecting costs nothing
  // on Redis (waiters of other processes are not counted: their own process reports them).
  // Keyed by the attributes' JSON (name, and group when not the default): at most (maxNames + 1) x (maxGroups + 2) keys.
  const reported = new Map<string, MetricAttributes>();
  const observe = (result: { observe(value: number, attributes?: MetricAttributes): void }) => {
    const totals = new Map<string, { attrs: MetricAttributes; n: number }>();
    for (const { name, group, count } of locks.localWaitersByGroup()) {
      const attrs: MetricAttributes = group === undefined ? { name: nameOf(name) } : { name: nameOf(name), group: groupOf(group) };
      const key = JSON.stringify(attrs);
      const total = totals.get(key) ?? { attrs, n: 0 };
      total.n += count;
      totals.set(key, total);
    }
    for (const [key, attrs] of reported) if (!totals.has(key)) totals.set(key, { attrs, n: 0 }); // a queue that emptied reads 0
    for (const [key, { attrs, n }] of totals) {
      reported.set(key, attrs);
      result.observe(n, attrs);
    }
  };
  queue.addCallback(observe);

  return {
    stop() {
      for (const [event, fn] of Object.entries(listeners)) off(event, fn as (...args: never[]) => void);
      queue.removeCallback(observe);
    },
  };
}
