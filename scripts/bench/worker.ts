/**
 * A bench child process: one lock client of one library, shared by its contenders, driven by the
 * parent over IPC. Every stamp it reports is on ITS OWN clock (clock.ts): the parent measures this
 * process's offset with `clock` ping-pongs and converts, and times it sends here (`startAt`) are
 * already converted to this process's clock. Durations it reports (`waitedMs`) are measured here.
 */
import { createClient } from 'redis';
import { adapterById } from './adapters/index.js';
import type { AcquireHooks, LockClient } from './adapters/types.js';
import { now, sleep, within } from './clock.js';
import type { Grant, Pending } from './stats.js';
import { prng } from '../prng.js'; // seeded: the read/write draws of a run repeat with its seeds

export type WorkerCommand =
  | {
      op: 'contend';
      id: number;
      lib: string;
      url: string;
      prefix: string;
      name: string;
      contenders: number;
      holdMs: number;
      thinkMs: number;
      /** On this process's clock. */
      startAt: number;
      durationMs: number;
      drainMs: number;
      maxGrants: number;
      /** What to contend for: the lock (default), a semaphore's permits, or a read-write lock's sides. */
      kind?: ContendKind;
      /**
       * A Redis key every holder INCRBYs after its grant and DECRBYs before its release (a permit or
       * a read 1, a write 1,000,000): a reply over the limit is a holder that overlapped others it
       * must exclude (Redis orders the two, no clock). These commands are left out of the counts.
       */
      checkKey?: string;
      /** Seeds the read/write draws (the worker's index). */
      seed?: number;
    }
  | { op: 'prepare'; id: number; lib: string; url: string; prefix: string; name: string }
  /** Loads the library's client module before the first timed run (adapter.warm). */
  | { op: 'warm'; id: number; lib: string }
  /**
   * Starts `count` waits on `name`. Answered once every one is in the queue (its onQueued fired, or
   * it ended) or `capMs` have passed, with how many were queued; at once, with no count, for a
   * library that cannot tell (adapter.reportsQueued).
   */
  | { op: 'wait'; id: number; name: string; count: number; capMs: number }
  | { op: 'unwait'; id: number }
  /**
   * The tenants scenario (tenants.ts), one role of it: 'flood' sends `flood` requests of one tenant at
   * `startAt`; 'quiet' sends, for each of `tenants`, one request every `intervalMs` from `startAt`
   * (tenant k offset by k / tenants of an interval) until `startAt + durationMs`. Each request holds one
   * permit `holdMs`. Answered once every request ended, or at `endAt` (the rest then abandoned).
   * Times on this process's clock.
   */
  | {
      op: 'tenants';
      id: number;
      lib: string;
      url: string;
      prefix: string;
      name: string;
      permits: number;
      holdMs: number;
      /** Each request names its tenant as its group (fairlock); else no group. */
      groups: boolean;
      role: 'flood' | 'quiet';
      flood: number;
      tenants: string[];
      intervalMs: number;
      startAt: number;
      durationMs: number;
      endAt: number;
    }
  /** Closes the clients of a 'tenants' run (abandoning what is left), once the parent's window is over. */
  | { op: 'tenantsClose'; id: number; name: string; role: 'flood' | 'quiet' }
  /** Answered at once with this process's now(): one round of the parent's offset measurement. */
  | { op: 'clock'; id: number };

/** One request of the tenants scenario: sent at `start`, granted at `got`, released at `rel` (null: not yet). */
export interface TenantRequest {
  tenant: string;
  start: number;
  /** When the library said it was queued (fairlock's onQueued; absent: granted at once, or no such callback). */
  queuedAt?: number;
  got: number | null;
  rel: number | null;
  /** The fencing token, if the library has one (fairlock: Redis's clock in µs at the grant, rising in grant order). */
  token?: number;
}

export type ContendKind = { type: 'semaphore'; permits: number } | { type: 'rw'; writeShare: number };

/** The weight a holder adds to the check key: a write excludes everyone, so it counts for all. */
export const CHECK_WRITE = 1_000_000;

export type WorkerReply =
  | {
      id: number;
      ok: true;
      grants?: Grant[];
      pending?: Pending[];
      granted?: number;
      queued?: number;
      clock?: number;
      cpuUs?: number;
      /** Holders that found the check key over the limit (see `checkKey`). */
      violations?: number;
      /** The tenants scenario: each request, on this process's clock. */
      requests?: TenantRequest[];
      /** ... and the permit-time its holds took inside [startAt, startAt + durationMs] (ms, own stamps). */
      heldMs?: number;
    }
  | { id: number; ok: false; error: string };

// Abandoned waits of destroyed clients reject later (some libraries do not catch their own).
process.on('unhandledRejection', () => undefined);
process.on('uncaughtException', (err) => {
  if (!/destroyed|closed|Connection is closed|ClientClosed|Socket closed/i.test(String(err?.message))) {
    process.send?.({ id: -1, ok: false, error: `uncaught: ${err?.stack ?? err}` });
  }
});
process.on('disconnect', () => process.exit(0));

async function contend(c: Extract<WorkerCommand, { op: 'contend' }>): Promise<WorkerReply> {
  const client = await adapterById(c.lib).create(c.url, c.prefix);
  const kind = c.kind;
  if (kind?.type === 'semaphore' && !client.semaphore) throw new Error(`${c.lib} has no semaphore`);
  if (kind?.type === 'rw' && !client.readWrite) throw new Error(`${c.lib} has no read-write lock`);
  const checker = c.checkKey ? createClient({ url: c.url, socket: { reconnectStrategy: false } }) : undefined;
  checker?.on('error', () => undefined);
  await checker?.connect();
  const limit = kind?.type === 'semaphore' ? kind.permits : 1;
  let violations = 0;
  const grants: Grant[] = [];
  const waits: ({ start: number; queuedAt?: number; position?: number; mode?: 'r' | 'w' } | undefined)[] = [];
  const end = c.startAt + c.durationMs;
  const acquireOne = (name: string, mode: 'r' | 'w' | undefined, hooks?: AcquireHooks) =>
    kind?.type === 'semaphore'
      ? client.semaphore!(name, kind.permits, hooks)
      : kind?.type === 'rw'
        ? client.readWrite!(name, mode === 'w' ? 'write' : 'read', hooks)
        : client.acquire(name, hooks);
  // One grant of the same kind on a name of its own before the window: the library's connections
  // (fairlock's subscriber), its scripts in Redis and its code paths are warm when the run starts,
  // so a short run does not measure a first use. Bounded by the lead time; a slow one just ends late.
  await within((async () => (await acquireOne(`${c.name}:warm`, 'r')).release())().catch(() => undefined), c.startAt - now());
  await sleep(c.startAt - now());
  const cpu0 = process.cpuUsage(); // this process's CPU over the run: the client's (and fairlock's) JS per grant
  let total = 0;
  const loop = async (i: number) => {
    const who = `${process.pid}:${i}`;
    const draw = prng((c.seed ?? 0) * 1_000 + i + 1);
    while (now() < end && total < c.maxGrants) {
      const mode = kind?.type === 'rw' ? (draw() < kind.writeShare ? 'w' : 'r') : undefined;
      const w: { start: number; queuedAt?: number; position?: number; mode?: 'r' | 'w' } = { start: now(), ...(mode ? { mode } : {}) };
      waits[i] = w;
      const hooks = {
        onQueued: (position: number) => {
          w.queuedAt ??= now();
          w.position ??= position;
        },
      };
      const held = await acquireOne(c.name, mode, hooks);
      const got = now();
      waits[i] = undefined;
      const weight = mode === 'w' ? CHECK_WRITE : 1;
      if (checker) {
        const v = Number(await checker.incrBy(c.checkKey!, weight));
        if (mode === 'w' ? v !== CHECK_WRITE : mode === 'r' ? v >= CHECK_WRITE : v > limit) violations++;
      }
      if (c.holdMs > 0) await sleep(c.holdMs);
      const rel = now();
      if (checker) await checker.decrBy(c.checkKey!, weight);
      await held.release();
      grants.push({
        contender: who,
        start: w.start,
        got,
        rel,
        ...(w.queuedAt === undefined ? {} : { queuedAt: w.queuedAt }),
        ...(held.token === undefined ? {} : { token: held.token }),
        ...(mode ? { mode } : {}),
        ...(w.position === undefined ? {} : { position: w.position }),
      });
      total++;
      if (c.thinkMs > 0) await sleep(c.thinkMs);
    }
  };
  const loops = Promise.all(Array.from({ length: c.contenders }, (_, i) => loop(i).catch(() => undefined)));
  await sleep(end - now());
  const cpu = process.cpuUsage(cpu0);
  const drained = await within(loops.then(() => true), c.drainMs);
  const at = now();
  const pending: Pending[] = waits.flatMap((w, i) =>
    w
      ? [{
          contender: `${process.pid}:${i}`,
          start: w.start,
          waitedMs: at - w.start,
          ...(w.queuedAt === undefined ? {} : { queuedAt: w.queuedAt }),
          ...(w.mode ? { mode: w.mode } : {}),
          ...(w.position === undefined ? {} : { position: w.position }),
        }]
      : [],
  );
  if (drained) await client.close();
  else await client.destroy();
  await checker?.quit().catch(() => undefined);
  return { id: c.id, ok: true, grants, pending, cpuUs: cpu.user + cpu.system, ...(checker ? { violations } : {}) };
}

async function warm(c: Extract<WorkerCommand, { op: 'warm' }>): Promise<WorkerReply> {
  await adapterById(c.lib).warm?.();
  return { id: c.id, ok: true };
}

/** The open clients of 'tenants' runs, by name and role, until the parent's tenantsClose. */
const tenantRuns = new Map<string, () => Promise<unknown>>();

async function tenantsClose(c: Extract<WorkerCommand, { op: 'tenantsClose' }>): Promise<WorkerReply> {
  const key = `${c.name} ${c.role}`;
  const close = tenantRuns.get(key);
  tenantRuns.delete(key);
  await close?.();
  return { id: c.id, ok: true };
}

async function tenants(c: Extract<WorkerCommand, { op: 'tenants' }>): Promise<WorkerReply> {
  const adapter = adapterById(c.lib);
  const names = c.role === 'flood' ? ['flood'] : c.tenants;
  // one client per tenant, as separate services would have
  const clients = await Promise.all(names.map(() => adapter.create(c.url, c.prefix)));
  const closeAll = (abandon: boolean) => Promise.all(clients.map((x) => (abandon ? x.destroy() : x.close())));
  try {
    if (clients.some((x) => !x.semaphore)) throw new Error(`${c.lib} has no semaphore`);
    const ask = (client: LockClient, tenant: string, name: string, onQueued?: () => void) =>
      client.semaphore!(name, c.permits, { ...(c.groups ? { group: tenant } : {}), ...(onQueued ? { onQueued } : {}) });
    // warm: connections, scripts and the client's paths, on a name of its own, before the window
    await within(Promise.all(clients.map(async (x, i) => (await ask(x, names[i]!, `${c.name}:warm`)).release())).catch(() => undefined), c.startAt - now());
    const requests: TenantRequest[] = [];
    const runs: Promise<void>[] = [];
    const one = (client: LockClient, tenant: string) => {
      const r: TenantRequest = { tenant, start: now(), got: null, rel: null };
      requests.push(r);
      runs.push((async () => {
        const held = await ask(client, tenant, c.name, () => void (r.queuedAt ??= now()));
        r.got = now();
        if (held.token !== undefined) r.token = held.token;
        await sleep(c.holdMs);
        r.rel = now();
        await held.release();
      })().catch(() => undefined));
    };
    await sleep(c.startAt - now());
    if (c.role === 'flood') {
      for (let i = 0; i < c.flood; i++) one(clients[0]!, names[0]!);
    } else {
      const until = c.startAt + c.durationMs;
      await Promise.all(clients.map(async (client, k) => {
        for (let j = 0; ; j++) {
          const at = c.startAt + (k / clients.length + j) * c.intervalMs;
          if (at >= until) break;
          await sleep(at - now());
          one(client, names[k]!);
        }
      }));
    }
    const done = await within(Promise.all(runs).then(() => true), c.endAt - now());
    const from = c.startAt;
    const to = c.startAt + c.durationMs;
    const at = now();
    let heldMs = 0;
    for (const r of requests) if (r.got !== null) heldMs += Math.max(0, Math.min(r.rel ?? at, to) - Math.max(r.got, from));
    // the clients close on the parent's word (tenantsClose), after its window: their closing is not counted
    tenantRuns.set(`${c.name} ${c.role}`, () => closeAll(!done));
    return { id: c.id, ok: true, requests, heldMs };
  } catch (err) {
    await closeAll(true).catch(() => undefined);
    throw err;
  }
}

let waiting: { client: LockClient; reportsQueued: boolean; granted: number } | undefined;

/** Connects (and opens whatever a first acquire opens) before the parent's memory baseline. */
async function prepare(c: Extract<WorkerCommand, { op: 'prepare' }>): Promise<WorkerReply> {
  const adapter = adapterById(c.lib);
  const client = await adapter.create(c.url, c.prefix);
  waiting = { client, reportsQueued: adapter.reportsQueued === true, granted: 0 };
  await (await client.acquire(`${c.name}:warm`)).release();
  return { id: c.id, ok: true };
}

async function wait(c: Extract<WorkerCommand, { op: 'wait' }>): Promise<WorkerReply> {
  const state = waiting;
  if (!state) throw new Error('wait before prepare');
  let queued = 0;
  let placed = 0; // waits that are queued, or ended (granted or failed): none of them enqueues any more
  let allPlaced!: () => void;
  const done = new Promise<void>((r) => (allPlaced = r));
  for (let i = 0; i < c.count; i++) {
    let counted = false;
    const place = () => {
      if (counted) return;
      counted = true;
      if (++placed === c.count) allPlaced();
    };
    state.client.acquire(c.name, { onQueued: () => (queued++, place()) }).then(
      () => (state.granted++, place()), // should not happen while the parent holds the lock
      place,
    );
  }
  if (!state.reportsQueued) return { id: c.id, ok: true };
  await within(done, c.capMs);
  return { id: c.id, ok: true, queued };
}

async function unwait(c: Extract<WorkerCommand, { op: 'unwait' }>): Promise<WorkerReply> {
  const w = waiting;
  waiting = undefined;
  if (w) await w.client.destroy();
  return { id: c.id, ok: true, granted: w?.granted ?? 0 };
}

process.on('message', (c: WorkerCommand) => {
  if (c.op === 'clock') {
    process.send!({ id: c.id, ok: true, clock: now() } satisfies WorkerReply);
    return;
  }
  const run =
    c.op === 'contend' ? contend(c)
    : c.op === 'prepare' ? prepare(c)
    : c.op === 'warm' ? warm(c)
    : c.op === 'tenants' ? tenants(c)
    : c.op === 'tenantsClose' ? tenantsClose(c)
    : c.op === 'wait' ? wait(c)
    : unwait(c);
  run.then(
    (r) => process.send!(r),
    (err: unknown) => process.send!({ id: c.id, ok: false, error: String((err as Error)?.stack ?? err) }),
  );
});
process.send!({ id: 0, ok: true });
