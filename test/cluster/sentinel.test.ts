/**
 * Behind Sentinel, a master killed with SIGKILL and replaced by its replica does not stop the lock: with
 * the clients that follow Sentinel (ioredis `sentinels`, node-redis 6 createSentinel()) the holder's
 * replicated grant is still its own, its release hands the lock to the waiter, and tokens rise.
 */
import test, { type ExecutionContext } from 'ava';
import { Redis as IORedis } from 'ioredis';
import { createSentinel } from 'redis-v6';
import { performance } from 'node:perf_hooks';
import type { RedisClientLike } from '../../src/redis/seam.js';
import { newLocks, scopeOf, settleWithin } from '../helpers/cleanup.js';
import { replicaCaughtUp, startSentinelSetup, type SentinelHandle } from '../helpers/cluster.js';
import { whenQueued } from '../helpers/queued.js';
import { newPrefix } from '../helpers/redis.js';
import { within } from '../helpers/bounded.js';

const opts = { heartbeatMs: 200, livenessMs: 2_000, leaseMs: 10_000 };

/* eslint-disable @typescript-eslint/no-explicit-any -- two client types, one shape used */
async function connectVia(t: ExecutionContext, family: 'ioredis5' | 'redis6', s: SentinelHandle): Promise<RedisClientLike> {
  if (family === 'ioredis5') {
    const client = new IORedis({ sentinels: s.sentinels, name: s.masterName, retryStrategy: (n) => Math.min(50 * n, 500) });
    client.on('error', () => undefined);
    scopeOf(t).add(() => client.disconnect());
    await new Promise<void>((resolve, reject) => {
      client.once('ready', resolve);
      client.once('end', () => reject(new Error('ioredis ended before ready')));
    });
    return client;
  }
  const client: any = createSentinel({ name: s.masterName, sentinelRootNodes: s.sentinels });
  client.on('error', () => undefined);
  scopeOf(t).add(() => settleWithin(Promise.resolve(client.destroy()), 3_000));
  await client.connect();
  return client;
}

for (const family of ['ioredis5', 'redis6'] as const) {
  test(`${family} through Sentinel: kill -9 of the master; after the promotion the holder keeps its grant, hands it on, tokens rise`, async (t) => {
    const setup = await startSentinelSetup();
    scopeOf(t).add(() => setup.stop());
    const prefix = newPrefix();
    const a = newLocks(t, await connectVia(t, family, setup), { prefix, ...opts });
    const b = newLocks(t, await connectVia(t, family, setup), { prefix, ...opts });
    const lost: string[] = [];
    for (const l of [a, b]) l.on('lost', (lease) => lost.push(lease.id));

    const held = await within(a.lock('s').acquire(), 20_000, 'the first grant');
    const q = whenQueued();
    const next = b.lock('s').acquire({ timeoutMs: 60_000, onQueued: q.onQueued });
    next.catch(() => undefined);
    await within(q.queued, 20_000, 'the waiter queued');
    await replicaCaughtUp(setup.master.port, setup.replica.port);

    const killedAt = performance.now();
    const { promotedAfterMs } = await within(setup.killMaster(), 40_000, 'the promotion');
    await within(held.release(), 30_000, 'the release on the new master');
    const releasedAfterMs = performance.now() - killedAt;
    const lease = await within(next, 30_000, 'the hand-off on the new master');
    const grantAfterMs = performance.now() - killedAt;
    t.true(lease.token > held.token, 'tokens rise across the failover');
    t.deepEqual(lost, [], 'the replicated grant was not lost');
    t.log(`${family}: promoted ${promotedAfterMs} ms, released ${Math.round(releasedAfterMs)} ms, next grant ${Math.round(grantAfterMs)} ms after the kill`);
    await within(lease.release(), 20_000, 'the last release');
    const again = await within(a.lock('s').acquire(), 20_000, 'a grant afterwards');
    t.true(again.token > lease.token);
    await again.release();
  });
}
