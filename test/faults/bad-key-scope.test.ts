/**
 * A key of the wrong type fails what needs it, at once, and nothing more: a corrupted queue key fails
 * the waiter at its next heartbeat while the holder keeps renewing; a corrupted state hash on an idle
 * name fails that name's next acquire, naming the key.
 */
import test from 'ava';
import { FairLocks, FairLockError } from '../../src/index.js';
import { lockKeys } from '../../src/protocol/keys.js';
import { useRedis } from '../helpers/fixture.js';
import { newPrefix } from '../helpers/redis.js';
import { whenQueued } from '../helpers/queued.js';
import { holdersAt, redisNow } from '../helpers/state.js';

const fx = useRedis();
const OPTS = { leaseMs: 5_000, livenessMs: 1_000, heartbeatMs: 200 };
const HOLDER = { leaseMs: 1_500 }; // short enough that only renewals keep it over the test
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('a queue key corrupted mid-wait fails the wait at its next heartbeat; the holder keeps its lease', async (t) => {
  const prefix = newPrefix();
  const a = new FairLocks(fx.client, { prefix, ...OPTS });
  const b = new FairLocks(fx.client, { prefix, ...OPTS });
  t.teardown(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  const keys = lockKeys(prefix, 'q');
  const lease = await a.lock('q').acquire(HOLDER);
  const q = whenQueued();
  const waiting = b.lock('q').acquire({ onQueued: q.onQueued }); // no timeout: only the library ends it
  await q.queued;
  await fx.client.del(keys.queue);
  await fx.client.set(keys.queue, 'garbage');
  const err = await t.throwsAsync(waiting, { instanceOf: FairLockError });
  t.is(err?.code, 'BAD_KEY');
  t.true(err!.message.includes(keys.queue), err!.message);
  const held = async () => (await holdersAt(fx.client, keys.state)).find((h) => h.id === lease.id);
  t.truthy(await held(), 'the wait failed while the holder still held (a holder that renews would have made it wait for ever before)');
  await sleep(HOLDER.leaseMs + 500); // longer than its lease: only renewals can have kept it
  t.false(lease.signal.aborted, 'the holder keeps renewing');
  t.true((await held())!.exp > (await redisNow(fx.client)), 'renewed in Redis too');
  await fx.client.del(keys.queue);
  await lease.release();
});

test.serial('a wrong-type state key on an idle name: the next acquire fails with BAD_KEY naming the key', async (t) => {
  const prefix = newPrefix();
  const locks = new FairLocks(fx.client, { prefix, ...OPTS });
  t.teardown(() => locks.close());
  const keys = lockKeys(prefix, 'c');
  const lease = await locks.lock('c').acquire();
  await t.notThrowsAsync(lease.release());
  t.deepEqual(await holdersAt(fx.client, keys.state), [], 'the name is idle: only its state hash is left');
  await fx.client.del(keys.state);
  await fx.client.set(keys.state, 'garbage');
  const err = await t.throwsAsync(locks.lock('c').acquire({ timeoutMs: 1_000 }), { instanceOf: FairLockError });
  t.is(err?.code, 'BAD_KEY');
  t.true(err!.message.includes(keys.state), err!.message);
  await fx.client.del(keys.state);
});
