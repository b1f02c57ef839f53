/**
 * Found by a review; fixed: every beat and enqueue set the TTL of the shared queue and sessions keys to its own
 * session's livenessMs x 2 (PEXPIRE overwrites, also downwards). (The one-file engine has no sessions
 * key and keeps the keys' expiry in the state's `x` field, moved only forward: the test still shows
 * that the queue outlives B.) A session with a short livenessMs
 * that waits briefly on a lock leaves both keys with a short TTL; they expire under a healthy waiter
 * A of a session with a longer livenessMs, whose next beat is still seconds away. C, which calls
 * acquire() after A's onQueued fired, is granted first: FIFO broken with every process alive.
 */
import test from 'ava';
import { FairLocks } from '../../src/index.js';
import { lockKeys } from '../../src/protocol/keys.js';
import { useRedis } from '../helpers/fixture.js';
import { newPrefix } from '../helpers/redis.js';
import { sleep, until } from '../helpers/proxy.js';

const fx = useRedis();

test('a short-liveness session does not shorten the TTL of keys a long-liveness waiter depends on: FIFO holds', async (t) => {
  const prefix = newPrefix();
  const keys = lockKeys(prefix, 'L');
  const H = new FairLocks(fx.client, { prefix, livenessMs: 20_000, heartbeatMs: 5_000 });
  const A = new FairLocks(fx.client, { prefix, livenessMs: 20_000, heartbeatMs: 5_000 });
  const B = new FairLocks(fx.client, { prefix, livenessMs: 200, heartbeatMs: 50 });
  const C = new FairLocks(fx.client, { prefix });
  const order: string[] = [];
  try {
    const lh = await H.lock('L').acquire();
    let aQueued = false;
    const pa = A.lock('L').acquire({ onQueued: () => (aQueued = true) }).then((l) => (order.push('A'), l));
    t.true(await until(() => aQueued, 5_000));
    await B.lock('L').acquire({ timeoutMs: 400 }).catch((e: Error) => t.log('B:', e.message));
    t.log('TTLs after B left: queue', await fx.client.pTTL(keys.queue), 'state', await fx.client.pTTL(keys.state));
    await until(async () => (await fx.client.exists(keys.queue)) === 0, 2_000, 20);
    t.log('queue key exists:', await fx.client.exists(keys.queue), 'state key exists:', await fx.client.exists(keys.state));
    let cQueued = false;
    const pc = C.lock('L').acquire({ onQueued: () => (cQueued = true) }).then((l) => (order.push('C'), l));
    t.true(await until(() => cQueued, 5_000));
    t.log('queue before the release:', JSON.stringify(await H.inspect('L')));
    await lh.release();
    const first = await Promise.race([pa, pc]);
    t.log('granted first:', order[0]);
    await sleep(50);
    await first.release();
    const second = await Promise.race([pa, pc].filter((p) => p !== (order[0] === 'A' ? pa : pc)));
    await second.release();
    t.deepEqual(order, ['A', 'C'], 'A was queued (onQueued) before C called acquire');
  } finally {
    await Promise.all([H.close(), A.close(), B.close(), C.close()]);
  }
});
