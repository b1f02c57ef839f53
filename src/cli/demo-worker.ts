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
/** The lock or permit held after a `take`, until the `release` order. */
let held: Lease | undefined;

function handle(): FairLock {
  return permits === undefined ? locks!.lock(name) : locks!.semaphore(name, { permits });
}

/** Waits for a grant, reporting "queued" if it had to wait, then "granted" with Redis's holders; holds until told. */
async function take(): Promise<void> {
  const asked = clock();
  let queued = false;
  const lease = await handle().acquire({
    timeoutMs: 10_000,
    onQueued: (position) => {
      queued = true;
      send({ ev: 'queued', position, at: clock() });
    },
  });
  const at = clock();
  held = lease;
  // Redis's own list of holders, read while this one holds: the demo checks it against the permits.
  const info = await locks!.inspect(name);
  send({ ev: 'granted', token: lease.token, at, immediate: !queued, waitedMs: at - asked, holders: info.holders.map((h) => h.token) });
}

async function release(): Promise<void> {
  const lease = held;
  held = undefined;
  if (!lease) throw new Error('told to release while holding nothing');
  send({ ev: 'releasing', at: clock() });
  await lease.release();
  send({ ev: 'released', at: clock() });
}

process.on('message', (order: DemoOrder) => {
  const run = async () => {
    if (order.op === 'init') {
      name = order.name;
      permits = order.permits;
      const createClient = await loadNodeRedis();
      client = createClient({ url: order.url }) as Client;
      client.on('error', () => undefined);
      await client.connect();
      locks = new FairLocks(client, { prefix: order.prefix });
      send({ ev: 'ready' });
    } else if (order.op === 'take') {
      await take();
    } else if (order.op === 'release') {
      await release();
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
