/**
 * FIFO across processes: 10 waiters in 5 processes are granted exactly in the order they entered the
 * queue (Redis numbers the grants), and a holder that asks again right after releasing goes to the back.
 */
import test from 'ava';
import { spawnChild, type Child } from './helpers/children.js';
import { clientFamilies } from './helpers/clients.js';
import { newLocks, openClient } from './helpers/cleanup.js';
import { newPrefix } from './helpers/redis.js';
import { useRedis } from './helpers/fixture.js';
import { whenQueued } from './helpers/queued.js';

const fx = useRedis();

test('10 waiters in 5 processes are granted exactly in the order they entered the queue', async (t) => {
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix });
  const holder = await locks.lock('q').acquire();

  const children: Child[] = [];
  for (let i = 0; i < 5; i++) children.push(await spawnChild(t, fx.server.url, prefix));
  const expected = clientFamilies(fx.server.url).find((f) => f.id === (process.env.FAIRLOCK_TEST_CLIENT || 'redis4'))?.name;
  t.true(children.every((c) => c.family === expected), `the children lock through ${expected} (FAIRLOCK_TEST_CLIENT)`);
  // Waiter k lives in process k % 5 and asks only after waiter k-1 is in the Redis queue.
  const waiters = Array.from({ length: 10 }, (_, k) => ({ child: children[k % 5]!, req: `w${k}` }));
  for (const [k, w] of waiters.entries()) {
    // orderKey: each grant INCRs it while holding, so Redis numbers the grants in the order they happened.
    w.child.send({ op: 'acquire', req: w.req, name: 'q', timeoutMs: 60_000, orderKey: `${prefix}:order` });
    const queued = await w.child.expect(w.req, 'queued');
    t.is(queued.ev === 'queued' && queued.position, k + 1);
  }
  const info = await locks.inspect('q');
  t.is(info.queue.length, 10);

  await holder.release();
  const order: string[] = [];
  const tokens: number[] = [];
  const counts: number[] = [];
  for (const w of waiters) {
    // Each granted waiter releases at once; the next in line must be the next one granted.
    const granted = await Promise.race(
      waiters.filter((x) => !order.includes(x.req)).map((x) => x.child.expect(x.req, 'granted', 20_000).then((e) => ({ x, e }))),
    );
    order.push(granted.x.req);
    if (granted.e.ev === 'granted') {
      tokens.push(granted.e.token);
      counts.push(granted.e.order ?? NaN);
    }
    granted.x.child.send({ op: 'release', req: granted.x.req });
    await granted.x.child.expect(granted.x.req, 'released');
    void w;
  }
  t.deepEqual(order, waiters.map((w) => w.req));
  t.deepEqual(counts, waiters.map((_, k) => k + 1), 'Redis counted the grants in this order');
  t.deepEqual(tokens, [...tokens].sort((a, b) => a - b));
  t.is(new Set(tokens).size, tokens.length);
  await locks.close();
  await client.quit();
});

test('re-acquiring right after a release goes to the back of the queue', async (t) => {
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const a = newLocks(t, client, { prefix });
  const b = newLocks(t, client, { prefix });
  const first = await a.lock('r').acquire();
  const q = whenQueued();
  const bWaits = b.lock('r').acquire({ onQueued: q.onQueued });
  await q.queued;
  await first.release();
  const again = a.lock('r').acquire();
  const bLease = await bWaits;
  t.is((await a.inspect('r')).holder?.id.split(':')[0], b.sessionId);
  await bLease.release();
  const aLease = await again;
  t.true(aLease.token > bLease.token);
  await aLease.release();
  await a.close();
  await b.close();
  await client.quit();
});
