import test from 'ava';
import { lockKeys } from '../src/protocol/keys.js';
import { Scripts } from '../src/protocol/scripts.js';
import { adaptClient } from '../src/redis/adapt.js';
import { newPrefix } from './helpers/redis.js';
import { useRedis } from './helpers/fixture.js';
import { newLocks } from './helpers/cleanup.js';
import { whenQueued } from './helpers/queued.js';
import { holders, redisNow } from './helpers/state.js';

const fx = useRedis();

test('tryAcquire gets a free lock and returns null while it is held', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const lease = await locks.lock('t').tryAcquire();
  t.truthy(lease);
  t.is(await locks.lock('t').tryAcquire(), null);
  await lease!.release();
  const again = await locks.lock('t').tryAcquire();
  t.true(again!.token > lease!.token);
  await again!.release();
  await locks.close();
});

test('tryAcquire returns null while anyone is queued, even when the lock is momentarily free', async (t) => {
  const prefix = newPrefix();
  const waiterSide = newLocks(t, fx.client, { prefix, heartbeatMs: 2_000, livenessMs: 10_000 });
  const third = newLocks(t, fx.client, { prefix });
  // A holder nobody watches (as if its process froze) takes a 150 ms lease straight from the script;
  // it runs out in Redis while the waiter's heartbeat has not yet come round to notice.
  const granted = await new Scripts(adaptClient(fx.client), prefix).acquire(lockKeys(prefix, 'm'), 'frozen:1:150:0:1:x', 10_000, 'try', 'lock', 1);
  t.is(granted.kind, 'granted');
  const q = whenQueued();
  const waiting = waiterSide.lock('m').acquire({ onQueued: q.onQueued });
  await q.queued;
  await new Promise((r) => setTimeout(r, 300));
  // Holder entries expire lazily: the frozen one is still in the state hash, past its deadline.
  const now = await redisNow(fx.client);
  const live = (await holders(fx.client, prefix, 'm')).filter((h) => h.exp > now);
  t.deepEqual(live, [], 'the holder entry has expired: the lock is free in Redis');
  t.is(await third.lock('m').tryAcquire(), null, 'tryAcquire must not barge past the queued waiter');
  const lease = await waiting;
  t.pass(`waiter granted with token ${lease.token}`);
  await lease.release();
  await Promise.all([waiterSide.close(), third.close()]);
});
