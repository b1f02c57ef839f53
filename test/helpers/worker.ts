/**
 * A child process that holds one FairLocks and does what its parent test tells it over IPC.
 * Every event it sends carries `at`: wall-clock ms with sub-ms precision (one clock for all
 * processes on this machine), so the parent can order events across processes.
 */
import { performance } from 'node:perf_hooks';
import { FairLocks, type Lease } from '../../src/index.js';
import type { RedisClient } from '../../src/scripts.js';
import { fencedWrite } from './fenced.js';
import { connect } from './redis.js';

export type Command =
  | { op: 'init'; url: string; prefix: string; options?: Record<string, number> }
  | { op: 'acquire'; req: string; name: string; timeoutMs?: number; leaseMs?: number; autoRenew?: boolean }
  | { op: 'release'; req: string }
  | { op: 'check'; req: string }
  | { op: 'contend'; req: string; name: string; contenders: number; rounds: number; holdMs: number; counterKey: string }
  | { op: 'close'; req: string }
  /** Reads the lease's signal, then writes to the fenced store with its token (whatever the signal said). */
  | { op: 'write'; req: string; key: string; value: string; storeUrl?: string };

export type Event = { at: number; req?: string } & (
  | { ev: 'ready'; pid: number; sessionId: string }
  | { ev: 'queued'; position: number }
  | { ev: 'granted'; token: number }
  | { ev: 'released' }
  | { ev: 'lost' }
  | { ev: 'checked'; aborted: boolean }
  | { ev: 'error'; name: string; code: string; message: string }
  | { ev: 'section'; token: number; start: number; end: number; overlap: boolean }
  | { ev: 'done' }
  | { ev: 'wrote'; token: number; aborted: boolean; accepted: boolean }
);

export const now = (): number => performance.timeOrigin + performance.now();

let client: RedisClient;
let locks: FairLocks;
const leases = new Map<string, Lease>();
const stores = new Map<string, Promise<RedisClient>>();

/** Omit<Event, 'at'> for each member of the union (a plain Omit would merge them). */
type Unstamped = Event extends infer E ? (E extends unknown ? Omit<E, 'at'> : never) : never;

function send(e: Unstamped): void {
  process.send?.({ at: now(), ...e });
}

function fail(req: string | undefined, err: unknown): void {
  const e = err as { name?: string; code?: string; message?: string };
  send({ req, ev: 'error', name: e.name ?? 'Error', code: e.code ?? '', message: e.message ?? String(err) });
}

async function contend(c: Extract<Command, { op: 'contend' }>): Promise<void> {
  const lock = locks.lock(c.name);
  const one = async () => {
    for (let i = 0; i < c.rounds; i++) {
      const lease = await lock.acquire({ timeoutMs: 60_000 });
      const start = now();
      // Anyone else inside raises the counter above 1: that is an overlap.
      const inside = await client.incr(c.counterKey);
      if (c.holdMs > 0) await new Promise((r) => setTimeout(r, c.holdMs));
      await client.decr(c.counterKey);
      const end = now();
      send({ req: c.req, ev: 'section', token: lease.token, start, end, overlap: inside !== 1 });
      await lease.release();
    }
  };
  await Promise.all(Array.from({ length: c.contenders }, one));
}

async function handle(c: Command): Promise<void> {
  switch (c.op) {
    case 'init':
      client = await connect(c.url);
      locks = new FairLocks(client, { prefix: c.prefix, ...(c.options ?? {}) });
      send({ ev: 'ready', pid: process.pid, sessionId: locks.sessionId });
      return;
    case 'acquire': {
      const lease = await locks.lock(c.name).acquire({
        timeoutMs: c.timeoutMs,
        leaseMs: c.leaseMs,
        autoRenew: c.autoRenew,
        onQueued: (position) => send({ req: c.req, ev: 'queued', position }),
      });
      leases.set(c.req, lease);
      lease.signal.addEventListener('abort', () => send({ req: c.req, ev: 'lost' }), { once: true });
      send({ req: c.req, ev: 'granted', token: lease.token });
      return;
    }
    case 'release':
      await leases.get(c.req)?.release();
      send({ req: c.req, ev: 'released' });
      return;
    case 'check':
      send({ req: c.req, ev: 'checked', aborted: leases.get(c.req)?.signal.aborted ?? true });
      return;
    case 'contend':
      await contend(c);
      send({ req: c.req, ev: 'done' });
      return;
    case 'write': {
      const lease = leases.get(c.req);
      if (!lease) throw new Error(`no lease for ${c.req}`);
      const aborted = lease.signal.aborted; // read first, as a careful holder would before writing
      const url = c.storeUrl ?? '';
      if (url && !stores.has(url)) stores.set(url, connect(url));
      const store = url ? await stores.get(url)! : client;
      const accepted = await fencedWrite(store, c.key, lease.token, c.value);
      send({ req: c.req, ev: 'wrote', token: lease.token, aborted, accepted });
      return;
    }
    case 'close':
      await locks.close();
      await client.quit();
      send({ req: c.req, ev: 'done' });
      return;
  }
}

process.on('message', (c: Command) => {
  handle(c).catch((err) => fail('req' in c ? c.req : undefined, err));
});
process.on('disconnect', () => process.exit(0));
