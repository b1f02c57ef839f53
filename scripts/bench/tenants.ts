/**
 * Fair share between tenants (DESIGN §7): one semaphore, one tenant that floods it, quiet tenants that
 * ask now and then. Does a quiet tenant still get a permit within about one hold, and at what price
 * in throughput (permits busy) and Redis CPU?
 *
 * Two worker processes: the flood (one client, `flood` requests sent at once at the start) and the
 * quiet tenants (one client each, one request every `intervalMs` for `durationMs`, tenant k offset by
 * k / tenants of an interval), every request holding one permit `holdMs`. fairlock runs twice: each
 * request naming its tenant as its group, and with no group (plain FIFO); redis-semaphore as its
 * adapter uses it. Waits come from one process's own two stamps (the request's send and its grant);
 * permits busy from each worker's own hold stamps clipped to the quiet window [start, start +
 * durationMs] (the window's edges sent to each worker on its clock, as contention.ts does), over
 * permits x durationMs. Redis CPU and commands per acquisition: INFO deltas from just before the
 * start until every request ended, over every grant (so each acquisition's enqueue, hand-off and
 * release are all inside), heartbeats and a peer's polling included.
 */
import type { Adapter } from './adapters/types.js';
import { SCRIPT_CALLS } from './contention-cost.js';
import { now, sleep, spanOffsets, toChild, type ClockOffset } from './clock.js';
import type { LatencyResult } from './latency.js';
import type { Worker } from './pool.js';
import { RedisStats } from './redis-stats.js';
import { isFairlock } from './results.js';
import { dist, round, type Dist } from './stats.js';
import type { TenantRequest } from './worker.js';

export interface TenantsOptions {
  permits: number;
  holdMs: number;
  /** Requests the flooding tenant sends at once at the start. */
  flood: number;
  /** The quiet tenants' count. */
  quiet: number;
  intervalMs: number;
  /** How long the quiet tenants send (the window permits busy is taken over). */
  durationMs: number;
  /** Everything ends by then (ms after the start): what is left is abandoned and reported as waiting. */
  capMs: number;
  leadMs: number;
}

/** 'groups': fairlock, tenant = group; 'fifo': fairlock, no group; 'peer': a library without groups. */
export type TenantsMode = 'groups' | 'fifo' | 'peer';

export interface TenantWaits {
  tenant: string;
  sent: number;
  granted: number;
  /** Waits (ms, send to grant, one process's clock); a request still waiting at the end counts with its wait so far. */
  wait: Dist;
  /** Requests still waiting when the run ended (their waits above are lower bounds). */
  stillWaiting: number;
  /** Of the waits, the part until the library said the request was queued (fairlock's onQueued: the enqueue's round trip), and the rest. */
  toQueued: Dist;
  queuedToGrant: Dist;
  /**
   * fairlock: flood grants made while a request of this tenant was queued, by fencing tokens (Redis's
   * clock in µs at each grant): flood tokens in (its token - its queued-to-grant time, its token). The
   * span is the client's, a little longer than Redis's, so this is an upper bound. With groups the
   * engine allows one grant per other active group; more means the engine passed it over.
   */
  floodGrantsWhileQueued: Dist | null;
}

export interface TenantsResult {
  mode: TenantsMode;
  permits: number;
  holdMs: number;
  flood: number;
  intervalMs: number;
  durationMs: number;
  quiet: TenantWaits[];
  /** The flood's holds as they were (grant to release call, one process): longer than holdMs when its process is late. */
  floodHold: Dist;
  /** The flood's requests granted, and those not yet granted when the quiet window ended (> 0: it was backlogged all along). */
  floodGranted: number;
  floodQueuedAtWindowEnd: number;
  /** Share of permit-time held over the quiet window: sum of holds clipped to it / (permits x durationMs). */
  permitsBusy: number | null;
  /** Every grant of the run (the window of the Redis figures). */
  grants: number;
  cpuUsPerAcquisition: number | null;
  commandsPerAcquisition: number | null;
  /**
   * Microseconds inside the top-level script calls (FCALL, EVALSHA, ...: INFO commandstats usec, their
   * nested commands included) per acquisition: the engine's own time, less noisy than used_cpu, which
   * also counts the network and event loop.
   */
  scriptUsPerAcquisition: number | null;
  /** Commands per acquisition by name (INFO commandstats, calls inside scripts included). */
  commandsByName: Record<string, number>;
  /** From the start until both workers answered (every request ended, or the cap), on this process's clock (s). */
  elapsedSec: number;
  /** The cap was hit: requests were abandoned. */
  capped: boolean;
  /** The two workers' clock offset uncertainty (only the window's edges use it). */
  clockUncertaintyMs: number;
  /** fairlock rows: the lock's hand-off measured in this bench run (latency.ts, one process), the target's unit. */
  handoff?: { pingP50Ms: number | null; p50Ms: number | null; p99Ms: number | null; n: number };
}

/** The hand-off figures of a short latency run, as a TenantsResult carries them. */
export function handoffOf(L: LatencyResult): NonNullable<TenantsResult['handoff']> {
  return { pingP50Ms: round(L.ping.p50, 3), p50Ms: round(L.handoff.p50, 3), p99Ms: round(L.handoff.p99, 3), n: L.handoff.n };
}

/** The runs a row makes: the first fairlock row with groups and without, redis-semaphore once, no other. */
export function tenantsModes(id: string, rows: readonly string[]): TenantsMode[] {
  if (id === rows.find((r) => isFairlock({ id: r }))) return ['groups', 'fifo'];
  return id === TENANTS_PEER ? ['peer'] : [];
}

export const TENANTS_PEER = 'redis-semaphore';

export const QUIET = (k: number) => `quiet-${k + 1}`;

export async function runTenants(
  pool: Worker[],
  stats: RedisStats,
  adapter: Adapter,
  url: string,
  prefix: string,
  mode: TenantsMode,
  o: TenantsOptions,
): Promise<TenantsResult> {
  const name = `tenants-${mode}`;
  const flooder = pool[0]!;
  const quieter = pool[1 % pool.length]!;
  const roles = [[flooder, 'flood'], [quieter, 'quiet']] as const;
  const clocks = new Map<Worker, ClockOffset>();
  for (const [w] of roles) if (!clocks.has(w)) clocks.set(w, await w.measureClock());
  const startAt = now() + o.leadMs;
  const tenants = Array.from({ length: o.quiet }, (_, k) => QUIET(k));
  const replies = Promise.all(
    roles.map(([w, role]) => {
      const off = clocks.get(w)!;
      return w.call(
        { op: 'tenants', lib: adapter.id, url, prefix, name, permits: o.permits, holdMs: o.holdMs, groups: mode === 'groups', role, flood: o.flood, tenants,
          intervalMs: o.intervalMs, startAt: toChild(startAt, off), durationMs: o.durationMs, endAt: toChild(startAt + o.capMs, off) },
        o.leadMs + o.capMs + 15_000,
      );
    }),
  );
  await sleep(startAt - now() - 5);
  const s1 = await stats.snapshot();
  // the clients close on our word, once the window is over, so that their closing is not counted
  const closeRuns = () => Promise.all(roles.map(([w, role]) => w.call({ op: 'tenantsClose', name, role }, 15_000).catch(() => undefined)));
  const all = await replies.catch(async (err: unknown) => {
    await closeRuns();
    throw err;
  });
  const ended = now();
  const s2 = await stats.snapshot();
  await closeRuns();
  let uncertainty = 0;
  for (const [w, before] of clocks) uncertainty = Math.max(uncertainty, spanOffsets(before, await w.measureClock()).uncertaintyMs);
  const requests = (i: number): TenantRequest[] => { const r = all[i]!; return r.ok ? (r.requests ?? []) : []; };
  const flood = requests(0);
  const quiet = requests(1);
  // each worker's end of the window, on its own clock: the start it was sent plus the duration
  const floodEnd = toChild(startAt, clocks.get(flooder)!) + o.durationMs;
  // a request still waiting when the cap passed: its wait until then
  const quietEnd = toChild(startAt + o.capMs, clocks.get(quieter)!);
  const floodTokens = flood.flatMap((r) => (r.token === undefined ? [] : [r.token])).sort((a, b) => a - b);
  const byTenant = tenants.map((tenant): TenantWaits => {
    const mine = quiet.filter((r) => r.tenant === tenant);
    const waits = mine.map((r) => (r.got ?? quietEnd) - r.start);
    const queued = mine.filter((r) => r.queuedAt !== undefined);
    return {
      tenant,
      sent: mine.length,
      granted: mine.filter((r) => r.got !== null).length,
      wait: rounded(dist(waits)),
      stillWaiting: mine.filter((r) => r.got === null).length,
      toQueued: rounded(dist(queued.map((r) => r.queuedAt! - r.start))),
      queuedToGrant: rounded(dist(queued.map((r) => (r.got ?? quietEnd) - r.queuedAt!))),
      floodGrantsWhileQueued: floodTokens.length
        ? dist(queued.flatMap((r) => (r.token === undefined || r.got === null ? [] : [between(floodTokens, r.token - (r.got - r.queuedAt!) * 1000, r.token)])))
        : null,
    };
  });
  const heldMs = all.reduce((a, r) => a + (r.ok ? (r.heldMs ?? 0) : 0), 0);
  const grants = [...flood, ...quiet].filter((r) => r.got !== null).length;
  const d = RedisStats.delta(s1, s2);
  const capped = [...flood, ...quiet].some((r) => r.rel === null);
  return {
    mode,
    permits: o.permits,
    holdMs: o.holdMs,
    flood: o.flood,
    intervalMs: o.intervalMs,
    durationMs: o.durationMs,
    quiet: byTenant,
    floodHold: rounded(dist(flood.flatMap((r) => (r.got !== null && r.rel !== null ? [r.rel - r.got] : [])))),
    floodGranted: flood.filter((r) => r.got !== null).length,
    floodQueuedAtWindowEnd: flood.filter((r) => r.got === null || r.got > floodEnd).length,
    permitsBusy: round(heldMs / (o.permits * o.durationMs), 4),
    grants,
    cpuUsPerAcquisition: grants ? round((d.cpuSeconds * 1e6) / grants, 1) : null,
    commandsPerAcquisition: grants ? round(d.commands / grants, 2) : null,
    scriptUsPerAcquisition: grants ? round(SCRIPT_CALLS.reduce((a, k) => a + (d.usecByCommand[k] ?? 0), 0) / grants, 1) : null,
    commandsByName: Object.fromEntries(Object.entries(d.byCommand).map(([k, v]) => [k, grants ? round(v / grants, 2)! : 0])),
    elapsedSec: round((ended - startAt) / 1000, 2)!,
    capped,
    clockUncertaintyMs: round(uncertainty, 3)!,
  };
}

/** How many of the sorted `xs` are strictly between `lo` and `hi`. */
function between(xs: number[], lo: number, hi: number): number {
  const first = (v: number) => {
    let a = 0;
    let b = xs.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (xs[m]! <= v) a = m + 1;
      else b = m;
    }
    return a;
  };
  let a = 0;
  let b = xs.length;
  while (a < b) {
    const m = (a + b) >> 1;
    if (xs[m]! < hi) a = m + 1;
    else b = m;
  }
  return Math.max(0, a - first(lo));
}

function rounded(x: Dist): Dist {
  return { n: x.n, p50: round(x.p50, 2), p99: round(x.p99, 2), max: round(x.max, 2) };
}
