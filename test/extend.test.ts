/**
 * extend(): on a nested (reentrant) lease it moves the outer lease's deadline too, and a lease
 * extended to less than the heartbeat period is still renewed in time.
 */
import test from 'ava';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';
import { newLocks } from './helpers/cleanup.js';

const fx = useRedis();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('extend() on a nested (reentrant) lease moves the outer lease deadline too', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const lock = locks.lock('n');
  await t.throwsAsync(
    lock.using(
      async (outer) => {
        const inner = await lock.acquire({ reentrant: true });
        await inner.extend(300);
        await sleep(450);
        t.true(outer.signal.aborted, 'Redis may hand the lock on after 300 ms: the outer lease must know');
      },
      { leaseMs: 5_000, autoRenew: false },
    ),
    { name: 'LockLostError' },
  );
  await locks.close();
});

test('extend() to a lease shorter than the heartbeat period keeps an auto-renewed lease alive', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() }); // heartbeat 1000 ms
  const lease = await locks.lock('s').acquire();
  await lease.extend(600);
  await sleep(1_500);
  t.false(lease.signal.aborted, 'the heartbeat period follows the shorter lease');
  await lease.release();
  await locks.close();
});
