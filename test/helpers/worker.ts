/**
 * A child process that holds one FairLocks and does what its parent test tells it over IPC.
 * Its events carry no clock stamp: two processes' clocks are never compared (a fresh process's
 * process clock origin can be tens of ms off). The parent stamps each event on arrival with its
 * own clock (children.ts `receivedAt`). Order across processes comes from Redis instead: with
 * `orderKey`, a granted waiter INCRs that key while it holds the lock and reports the count as
 * `order`; a contender brackets its critical section with INCRs of `seqKey` (`startSeq`, `endSeq`).
 * Redis runs commands one at a time, so these numbers are one total order for all processes.
 */
import { FairLocks, type Lease, type QuorumLocks } from '../../src/index.js';
import type { RedisClient } from './redis-client.js';
import { fencedWrite } from './fenced.js';
import { childLockClient, connectCluster, parseClusterUrl, type TestClient } from './clients.js';
import { connect } from './redis.js';
import { whenAborted } from './queued.js';
import { handleFor, type Req } from '../properties/subjects.js';

export type Command =
  | { op: 'init'; url: string; prefix: string; options?: Record<string, number> }
  /** A quorum (FairLocks.quorum) over `urls`, one node-redis 4 client each: `acquire` and `release` then go through it. */
  | { op: 'init-quorum'; urls: string[]; options?: Record<string, number> }
  /** With `orderKey`: once granted, INCR it (while holding) and report the count as the grant's `order`. */
  /** `request`: what to acquire (default: the plain lock `name`); see properties/subjects.ts. */
  /** `group`: the group it asks in (DESIGN §7; a lock or a semaphore). */
  | { op: 'acquire'; req: string; name: string; timeoutMs?: number; leaseMs?: number; autoRenew?: boolean; orderKey?: string; request?: Req; group?: string }
  | { op: 'release'; req: string }
  | { op: 'check'; req: string }
  /** Each section: INCR seqKey, INCR counterKey (overlap when > 1), hold, DECR counterKey, INCR seqKey. */
  | { op: 'contend'; req: string; name: string; contenders: number; rounds: number; holdMs: number; counterKey: string; seqKey: string }
  | { op: 'close'; req: string }
  /** Reads the lease's signal, then writes to the fenced store with its token (whatever the signal said). */
  | { op: 'write'; req: string; key: string; value: string; storeUrl?: string };

export type Event = { req?: string } & (
  | { ev: 'ready'; pid: number; sessionId: string; family: string }
  | { ev: 'queued'; position: number }
  /** `order`: the value of INCR orderKey right after the grant (when the acquire gave an orderKey). */
  | { ev: 'granted'; token: number; order?: number }
  | { ev: 'released' }
  | { ev: 'lost' }
  | { ev: 'checked'; aborted: boolean }
  | { ev: 'error'; name: string; code: string; message: string }
  /** startSeq/endSeq: INCR seqKey on entering and before leaving; Redis's order, not a clock. */
  | { ev: 'section'; token: number; startSeq: number; endSeq: number; overlap: boolean }
  | { ev: 'done' }
  | { ev: 'wrote'; token: number; aborted: boolean; accepted: boolean }
);

let client: RedisClient;
/** The client FairLocks runs on, when FAIRLOCK_TEST_CLIENT names another family than `client`'s. */
let lockClient: TestClient | undefined;
let locks: FairLocks;
/** After init-quorum: the quorum, and its clients (closed by `close`). */
let quorum: QuorumLocks | undefined;
const quorumClients: RedisClient[] = [];
const leases = new Map<string, Lease>();
const stores = new Map<string, Promise<RedisClient>>();

function send(e: Event): void {
  process.send?.(e);
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
      const startSeq = await client.incr(c.seqKey);
      // Anyone else inside raises the counter above 1: that is an overlap.
      const inside = await client.incr(c.counterKey);
      if (c.holdMs > 0) await new Promise((r) => setTimeout(r, c.holdMs));
      await client.decr(c.counterKey);
      const endSeq = await client.incr(c.seqKey);
      send({ req: c.req, ev: 'section', token: lease.token, startSeq, endSeq, overlap: inside !== 1 });
      await lease.release();
    }
  };
  await Promise.all(Array.from({ length: c.contenders }, one));
}

async function handle(c: Command): Promise<void> {
  switch (c.op) {
    case 'init':
      // On a cluster the child's own counters (orderKey, seqKey) go through a node-redis 4 cluster client.
      client = parseClusterUrl(c.url) ? ((await connectCluster(c.url, 'redis4')).client as unknown as RedisClient) : await connect(c.url);
      lockClient = await childLockClient(c.url);
      locks = new FairLocks(lockClient?.client ?? client, { prefix: c.prefix, ...(c.options ?? {}) });
      send({ ev: 'ready', pid: process.pid, sessionId: locks.sessionId, family: lockClient?.family ?? 'node-redis 4' });
      return;
    case 'init-quorum':
      for (const url of c.urls) quorumClients.push(await connect(url));
      quorum = FairLocks.quorum(quorumClients, c.options);
      send({ ev: 'ready', pid: process.pid, sessionId: '', family: 'node-redis 4' });
      return;
    case 'acquire': {
      const lease = await (quorum ? quorum.lock(c.name) : handleFor(locks, c.name, c.request ?? { kind: 'lock' })).acquire({
        timeoutMs: c.timeoutMs,
        leaseMs: c.leaseMs,
        autoRenew: c.autoRenew,
        group: c.group,
        onQueued: (position) => send({ req: c.req, ev: 'queued', position }),
      });
      leases.set(c.req, lease);
      void whenAborted(lease.signal).then(() => send({ req: c.req, ev: 'lost' }));
      const order = c.orderKey ? await client.incr(c.orderKey) : undefined;
      send({ req: c.req, ev: 'granted', token: lease.token, ...(order === undefined ? {} : { order }) });
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
      if (quorum) {
        await quorum.close();
        for (const q of quorumClients) await q.quit();
        send({ req: c.req, ev: 'done' });
        return;
      }
      await locks.close();
      await lockClient?.close();
      await client.quit();
      send({ req: c.req, ev: 'done' });
      return;
  }
}

process.on('message', (c: Command) => {
  handle(c).catch((err) => fail('req' in c ? c.req : undefined, err));
});
process.on('disconnect', () => process.exit(0));
