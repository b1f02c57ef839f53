/**
 * 1,000+ waiters on one lock, with a process holding 300 of them mid-queue killed: the 1,000 survivors
 * are all granted exactly in queue order, the dead block is skipped after one liveness, and nothing is
 * left behind.
 */
import test from 'ava';
import type { Lease } from '../../src/index.js';
import { spawnChild } from '../helpers/children.js';
import { newLocks, openClient } from '../helpers/cleanup.js';
import { newPrefix } from '../helpers/redis.js';
import { useRedis } from '../helpers/fixture.js';

const OPTS = { leaseMs: 2000, livenessMs: 800, heartbeatMs: 200 };
const fx = useRedis();

test('1,000 waiters around 300 of a killed process: every survivor granted in queue order', async (t) => {
  t.timeout(60_000);
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const lock = locks.lock('many');
  const holder = await lock.acquire();

  const order: number[] = []; // grant order, by the waiter's queue position
  const tickets: number[] = [];
  const enqueue = async (n: number) => {
    const queued: Promise<void>[] = [];
    const done: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      let onQueued!: () => void;
      queued.push(new Promise<void>((r) => (onQueued = r)));
      const k = tickets.length + i;
      done.push(
        lock.acquire({ timeoutMs: 50_000, onQueued: () => onQueued() }).then(async (lease: Lease) => {
          order.push(k);
          tickets[k] = lease.token;
          await lease.release();
        }),
      );
    }
    tickets.length += n;
    await Promise.all(queued);
    return done;
  };
  const first = await enqueue(500);
  const child = await spawnChild(t, fx.server.url, prefix, OPTS);
  for (let i = 0; i < 300; i++) child.send({ op: 'acquire', req: `c${i}`, name: 'many', timeoutMs: 50_000 });
  await child.waitFor((e) => e.req === 'c299' && e.ev === 'queued', 20_000, 'child queued');
  const second = await enqueue(500);
  t.is((await locks.inspect('many')).queue.length, 1300);

  await child.stop();
  await holder.release();
  await Promise.all([...first, ...second]);
  t.is(order.length, 1000);
  t.deepEqual(order, [...order].sort((a, b) => a - b), 'granted exactly in queue order');
  for (let i = 1; i < tickets.length; i++) if (!(tickets[i]! > tickets[i - 1]!)) t.fail(`token ${i} not above token ${i - 1}`);

  const info = await locks.inspect('many');
  const { recentReleases, ...rest } = info;
  t.deepEqual(rest, { kind: 'lock', limit: 1, perGroup: undefined, groups: [], available: 1, holders: [], holder: null, queue: [] });
  t.is(recentReleases.length, 8, 'the last 8 grants given back');
  await locks.close();
  const left: string[] = [];
  for await (const k of client.scanIterator({ MATCH: `${prefix}:*` })) if (!k.endsWith(':state')) left.push(k);
  for (const k of left) t.true((await client.pTTL(k)) > 0, `${k} carries an expiry`);
  await client.quit();
});
