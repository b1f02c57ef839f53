/**
 * A worker process of `fairlock demo`, forked by demo.ts. It takes orders over IPC ("take the lock or
 * a permit" ... "release") and reports each step with a timestamp from the system-wide monotonic
 * clock (for the timeline and the lock's hand-off times; the demo decides order from tokens).
 */
import { loadNodeRedis, type Client } from './common.js';
import { FairLocks, type FairLock, type Lease } from '../index.js';
import { clock, type DemoOrder, type DemoReport } from './demo-protocol.js';

const send = (r: DemoReport) => process.send?.(r);
let locks: FairLocks | undefined;
let client: Client | undefined;
let name = 'demo';
let permits: number | undefined;
/** The group every request of this worker takes its turn in (`demo --groups`); undefined: the default group. */
let group: string | undefined;
/** The locks or permits held after a `take`, by request id, until the `release` order. */
const held = new Map<number, Lease>();

function handle(): FairLock {
  return permits === undefined ? locks!.lock(name) : locks!.semaphore(name, { permits });
}

/** Waits for a grant, reporting "queued" if it had to wait, then "granted" with Redis's holders; holds until told. */
async function take(id: number): Promise<void> {
  const asked = clock();
  let queued = false;
  const lease = await handle().acquire({
    timeoutMs: 10_000,
    ...(group !== undefined && { group }),
    onQueued: (position) => {
      queued = true;
      send({ ev: 'queued', position, at: clock(), id });
    },
  });
  const at = clock();
  held.set(id, lease);
  // Redis's own list of holders, read while this one holds: the demo checks it against the permits
  // (and, with groups, that Redis lists this grant in its tenant's group).
  const info = await locks!.inspect(name);
  const listed = info.holders.find((h) => h.token === lease.token);
  send({
    ev: 'granted',
    token: lease.token,
    at,
    immediate: !queued,
    waitedMs: at - asked,
    holders: info.holders.map((h) => h.token),
    id,
    ...(listed && { group: listed.group ?? '' }),
  });
}

async function release(id: number): Promise<void> {
  const lease = held.get(id);
  held.delete(id);
  if (!lease) throw new Error(`told to release request ${id} while not holding it`);
  send({ ev: 'releasing', at: clock(), id });
  await lease.release();
  send({ ev: 'released', at: clock(), id });
}

process.on('message', (order: DemoOrder) => {
  const run = async () => {
    if (order.op === 'init') {
      name = order.name;
      permits = order.permits;
      group = order.group;
      const createClient = await loadNodeRedis();
      client = createClient({ url: order.url }) as Client;
      client.on('error', () => undefined);
      await client.connect();
      locks = new FairLocks(client, { prefix: order.prefix });
      send({ ev: 'ready' });
    } else if (order.op === 'take') {
      await take(order.id ?? 0);
    } else if (order.op === 'release') {
      await release(order.id ?? 0);
    } else {
      await locks?.close();
      await client?.quit();
      process.exit(0);
    }
  };
  run().catch((err: unknown) => {
    send({ ev: 'error', message: err instanceof Error ? err.message : String(err) });
  });
});
// The parent going away (even by SIGKILL) closes the IPC channel: stop too.
process.on('disconnect', () => process.exit(0));
