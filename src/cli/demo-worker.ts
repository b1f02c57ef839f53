/**
 * A worker process of `fairlock demo`, forked by demo.ts. It takes orders over IPC ("acquire, hold
 * for N ms, release") and reports each step with a timestamp from the system-wide monotonic clock,
 * so that the parent can compare times across processes.
 */
import { loadNodeRedis, type Client } from './common.js';
import { FairLocks } from '../index.js';
import { clock, type DemoOrder, type DemoReport } from './demo-protocol.js';

const send = (r: DemoReport) => process.send?.(r);
let locks: FairLocks | undefined;
let client: Client | undefined;
let name = 'demo';

async function acquire(holdMs: number): Promise<void> {
  const lock = locks!.lock(name);
  const asked = clock();
  let queued = false;
  const lease = await lock.acquire({
    timeoutMs: 10_000,
    onQueued: (position) => {
      queued = true;
      send({ ev: 'queued', position, at: clock() });
    },
  });
  const at = clock();
  send({ ev: 'granted', token: lease.token, at, immediate: !queued, waitedMs: at - asked });
  await new Promise((r) => setTimeout(r, holdMs)); // the "work"
  send({ ev: 'releasing', at: clock() });
  await lease.release();
  send({ ev: 'released', at: clock() });
}

process.on('message', (order: DemoOrder) => {
  const run = async () => {
    if (order.op === 'init') {
      name = order.name;
      const createClient = await loadNodeRedis();
      client = createClient({ url: order.url }) as Client;
      client.on('error', () => undefined);
      await client.connect();
      locks = new FairLocks(client, { prefix: order.prefix });
      send({ ev: 'ready' });
    } else if (order.op === 'acquire') {
      await acquire(order.holdMs);
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
