/**
 * One soak process (forked by soak-lib.ts with --expose-gc): `contenders` loops over the run's names,
 * each name's primitive fixed by its index (see kindOf), doing acquire with a timeout, tryAcquire, an
 * acquire aborted by its signal, or a reentrant acquire inside using(), holding briefly. Besides, a
 * hand-off probe on a name of its slot: two contenders of THIS process, the second queued behind the
 * first; the time from the first's release() call to the second's grant is taken on this process's
 * clock only (never compared with another process's).
 * IPC: the driver sends init, report (answered with the counts since the last report) and stop.
 */
import { createClient } from 'redis';
import { FairLocks, type Lease } from '../src/index.js';
import { isEngineCall } from '../src/protocol/scripts.js';
import type { RedisClient } from '../test/helpers/redis-client.js';

export type SoakKind = 'lock' | 'semaphore' | 'rw' | 'group-lock' | 'group-semaphore';
export const KINDS: readonly SoakKind[] = ['lock', 'semaphore', 'rw', 'group-lock', 'group-semaphore'];
/** Name i's primitive: every name keeps one kind for the whole run (a name's kind and limit are fixed). */
export const kindOf = (i: number): SoakKind => KINDS[i % KINDS.length]!;
export const nameOf = (i: number): string => `n${i}`;
/** The hand-off probe's name of worker slot `slot` (a bounded set: slots are reused by respawns). */
export const handoffName = (slot: number): string => `hand${slot}`;
export const SEMAPHORE = { permits: 3, maxWeight: 2 } as const;
export const GROUP_SEMAPHORE = { permits: 4, perGroup: 2, maxWeight: 2, groups: 4 } as const;

export interface SoakInit {
  op: 'init';
  url: string;
  prefix: string;
  slot: number;
  names: number;
  /** Share of picks that go to the first `hotNames` names (contention), the rest uniform over all. */
  hotShare: number;
  hotNames: number;
  contenders: number;
  holdMaxMs: number;
  /** Share of grants held for about `longHoldMs` (renewed by heartbeats) instead of up to holdMaxMs. */
  longShare: number;
  longHoldMs: number;
  pauseMaxMs: number;
  handoffEveryMs: number;
  options: { leaseMs: number; livenessMs: number; heartbeatMs: number };
}

export interface SoakReport {
  ev: 'report';
  seq: number;
  heapUsed: number;
  rss: number;
  handles: number;
  /** Counts since the previous report. */
  heartbeats: number;
  grants: number;
  handoffs: number[];
  errors: Record<string, number>;
}
export type SoakWorkerMessage = { ev: 'ready' } | { ev: 'done' } | SoakReport;
export type SoakCommand = SoakInit | { op: 'report'; seq: number } | { op: 'stop' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const send = (m: SoakWorkerMessage) => process.send?.(m);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
/** Outcomes that are the soak's ordinary traffic (timeouts, aborts, busy, faults it injects), not errors. */
const EXPECTED = new Set(['LOCK_TIMEOUT', 'LOCK_ABORTED', 'LOCK_LOST', 'NOT_HOLDER', 'CLOSED']);

let running = true;
const counts = { heartbeats: 0, grants: 0, handoffs: [] as number[], errors: {} as Record<string, number> };

function noteError(err: unknown): void {
  const code = (err as { code?: string }).code;
  const key = code && EXPECTED.has(code) ? `expected:${code}` : (code ?? 'redis/other');
  counts.errors[key] = (counts.errors[key] ?? 0) + 1;
}

async function main(init: SoakInit): Promise<void> {
  const socket = { reconnectStrategy: (n: number) => Math.min(50 * n, 500) };
  // Named so the driver finds the lock connections in CLIENT LIST (CLIENT KILL fault).
  const client = createClient({ url: init.url, name: `soak-${process.pid}`, socket }) as RedisClient;
  client.on('error', () => undefined);
  // Heartbeat rate: count the engine's heartbeat calls as they leave this process.
  const orig = client.sendCommand.bind(client);
  (client as unknown as { sendCommand: unknown }).sendCommand = (args: string[], ...rest: unknown[]) => {
    if (isEngineCall(args, 'heartbeat')) counts.heartbeats++;
    return (orig as (...a: unknown[]) => unknown)(args, ...rest);
  };
  await client.connect();
  const locks = new FairLocks(client, { prefix: init.prefix, ...init.options });
  send({ ev: 'ready' });

  const pickName = (): number => (Math.random() < init.hotShare ? Math.floor(Math.random() * init.hotNames) : Math.floor(Math.random() * init.names));

  // Mostly short holds; one in `longShare` is held past a few heartbeats, so renewals run steadily too.
  const holdMs = () => (Math.random() < init.longShare ? init.longHoldMs * (0.5 + Math.random()) : Math.random() * init.holdMaxMs);
  const holdAndRelease = async (lease: Lease) => {
    counts.grants++;
    await sleep(holdMs());
    await lease.release().catch(noteError);
  };

  const once = async (): Promise<void> => {
    const i = pickName();
    const name = nameOf(i);
    const kind = kindOf(i);
    const group = kind.startsWith('group-') ? `g${Math.floor(Math.random() * GROUP_SEMAPHORE.groups)}` : undefined;
    const lock =
      kind === 'semaphore'
        ? locks.semaphore(name, { permits: SEMAPHORE.permits, weight: 1 + Math.floor(Math.random() * SEMAPHORE.maxWeight) })
        : kind === 'group-semaphore'
          ? locks.semaphore(name, { permits: GROUP_SEMAPHORE.permits, perGroup: GROUP_SEMAPHORE.perGroup, weight: 1 + Math.floor(Math.random() * GROUP_SEMAPHORE.maxWeight) })
          : kind === 'rw'
            ? Math.random() < 0.7
              ? locks.readWrite(name).read()
              : locks.readWrite(name).write()
            : locks.lock(name);
    const op = pick(kind === 'lock' ? ['acquire', 'try', 'abort', 'reentrant'] : ['acquire', 'try', 'abort']);
    try {
      if (op === 'try') {
        const lease = await lock.tryAcquire({ group });
        if (lease) await holdAndRelease(lease);
      } else if (op === 'abort') {
        const ac = new AbortController();
        const timer = setTimeout(() => ac.abort(), Math.random() * 300);
        try {
          await holdAndRelease(await lock.acquire({ signal: ac.signal, group }));
        } finally {
          clearTimeout(timer);
        }
      } else if (op === 'reentrant') {
        await lock.using(async () => {
          counts.grants++;
          const inner = await lock.acquire({ reentrant: true });
          await sleep(holdMs());
          await inner.release();
        }, { timeoutMs: 100 + Math.random() * 1_400 });
      } else {
        await holdAndRelease(await lock.acquire({ timeoutMs: 100 + Math.random() * 1_400, group }));
      }
    } catch (err) {
      noteError(err);
    }
  };

  const loop = async () => {
    while (running) {
      await once();
      await sleep(Math.random() * init.pauseMaxMs);
    }
  };

  // Hand-off probe: A holds, B queues (onQueued: its enqueue ran in Redis), A releases; B's grant time
  // minus A's release() call time, both on this clock.
  const probe = async () => {
    const lock = locks.lock(handoffName(init.slot));
    while (running) {
      try {
        const a = await lock.acquire({ timeoutMs: 10_000 });
        let queued!: () => void;
        const isQueued = new Promise<void>((r) => (queued = r));
        const b = lock.acquire({ timeoutMs: 10_000, onQueued: () => queued() });
        await Promise.race([isQueued, b.then(() => undefined, () => undefined)]);
        const t0 = performance.now();
        void a.release().catch(noteError);
        const lease = await b;
        counts.handoffs.push(performance.now() - t0);
        await lease.release().catch(noteError);
      } catch (err) {
        noteError(err);
      }
      await sleep(init.handoffEveryMs * (0.5 + Math.random()));
    }
  };

  await Promise.all([probe(), ...Array.from({ length: init.contenders }, loop)]);
  await locks.close().catch(noteError);
  send({ ev: 'done' });
  await client.quit().catch(() => undefined);
}

function report(seq: number): SoakReport {
  (globalThis as { gc?: () => void }).gc?.(); // heap after a full gc: what is really retained
  const m = process.memoryUsage();
  const r: SoakReport = { ev: 'report', seq, heapUsed: m.heapUsed, rss: m.rss, handles: process.getActiveResourcesInfo().length, ...counts };
  counts.heartbeats = 0;
  counts.grants = 0;
  counts.handoffs = [];
  counts.errors = {};
  return r;
}

process.on('message', (m: SoakCommand) => {
  if (m.op === 'init') {
    main(m).then(
      () => process.exit(0),
      (err) => {
        console.error('soak worker failed:', err);
        process.exit(1);
      },
    );
  } else if (m.op === 'report') send(report(m.seq));
  else if (m.op === 'stop') running = false;
});
process.on('disconnect', () => process.exit(0));
