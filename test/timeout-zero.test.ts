/**
 * `timeoutMs: 0` is one attempt that never queues: granted when the lock is free and nobody waits, else
 * LockTimeoutError at once, whatever a 0 ms timer racing the enqueue reply does.
 */
import test from 'ava';
import { FairLocks, LockTimeoutError } from '../src/index.js';
import { newPrefix } from './helpers/redis.js';
import { useRedis } from './helpers/fixture.js';
import { whenQueued } from './helpers/queued.js';

const fx = useRedis();

test('on a free lock, 60 of 60 calls with timeoutMs 0 are granted', async (t) => {
  const locks = new FairLocks(fx.client, { prefix: newPrefix() });
  t.teardown(() => locks.close());
  const lock = locks.lock('free');
  let granted = 0;
  for (let i = 0; i < 60; i++) {
    const lease = await lock.acquire({ timeoutMs: 0, onQueued: () => t.fail('a timeoutMs 0 acquire queued') });
    granted++;
    await lease.release();
  }
  t.is(granted, 60);
});

test('on a held lock, or a free one with a waiter queued, timeoutMs 0 rejects at once and never queues', async (t) => {
  const locks = new FairLocks(fx.client, { prefix: newPrefix() });
  t.teardown(() => locks.close());
  const lock = locks.lock('busy');
  const holder = await lock.acquire();
  for (let i = 0; i < 20; i++) {
    const err = await t.throwsAsync(lock.acquire({ timeoutMs: 0, onQueued: () => t.fail('queued') }), { instanceOf: LockTimeoutError });
    t.is(err?.code, 'LOCK_TIMEOUT');
  }
  t.deepEqual((await locks.inspect('busy')).queue, [], 'no entry was left in the queue');
  // A queued waiter keeps its turn: a timeoutMs 0 attempt does not barge when the holder leaves.
  const q = whenQueued();
  const waiter = lock.acquire({ onQueued: q.onQueued });
  await q.queued;
  const release = holder.release();
  await t.throwsAsync(lock.acquire({ timeoutMs: 0 }), { instanceOf: LockTimeoutError });
  await release;
  const lease = await waiter;
  t.true(lease.token > holder.token);
  await lease.release();
});
