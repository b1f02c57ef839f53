/**
 * A holder partitioned after a hand-off is told of its loss before anyone else is granted the lock, even
 * when a heartbeat found the queue key of the wrong type and reported its grant: no two holders (a control
 * runs the same with no bad key).
 */
import test from 'ava';
import { FairLocks } from '../../src/index.js';
import { lockKeys } from '../../src/protocol/keys.js';
import { useRedis } from '../helpers/fixture.js';
import { connect, newPrefix } from '../helpers/redis.js';
import { sleep, startProxy, until } from '../helpers/proxy.js';
import { holdersAt, redisNow } from '../helpers/state.js';

const fx = useRedis();

for (const corrupt of [true, false]) {
  test.serial(`holder B partitioned after a hand-off${corrupt ? ' and a wrong-type queue key' : ' (control)'}`, async (t) => {
    const prefix = newPrefix();
    const keys = lockKeys(prefix, 'L');
    const proxy = await startProxy(fx.server.port);
    const cb = await connect(proxy.url);
    const cc = await connect(fx.server.url);
    const A = new FairLocks(fx.client, { prefix });
    const B = new FairLocks(cb, { prefix, livenessMs: 20_000, heartbeatMs: 5_000 });
    const C = new FairLocks(cc, { prefix });
    try {
      const la = await A.lock('L').acquire();
      let queued = false;
      const pb = B.lock('L').acquire({ leaseMs: 3_000, onQueued: () => (queued = true) });
      t.true(await until(() => queued, 5_000));
      await la.release();
      const lb = await pb; // from the wake-up: unconfirmed in Redis (c=0), exp = liveness deadline
      const g = Date.now();
      // B's holder entry in the state hash ("token exp lease granted confirmed"), and its time left in Redis.
      const entry = async () => (await holdersAt(fx.client, keys.state)).find((h) => h.id === lb.id);
      const described = async () => {
        const h = await entry();
        return h ? `${JSON.stringify(h)} left ${h.exp - (await redisNow(fx.client))} ms` : 'none';
      };
      t.log('holder after hand-off:', await described());
      t.log(`B remainingMs right after the grant: ${Math.round(lb.remainingMs)}`);
      if (corrupt) {
        await fx.client.set(keys.queue, 'not a zset'); // the fault: a key of the wrong type under the prefix
        await until(() => lb.remainingMs > 4_000, 2_500, 50); // B's beat (period 1 s) hits the bad-queue branch
        t.log(`B remainingMs after a bad-queue beat: ${Math.round(lb.remainingMs)} (lease is 3000)`);
        await fx.client.del(keys.queue); // repaired
        const before = JSON.stringify(await entry());
        await until(async () => JSON.stringify(await entry()) !== before, 2_500, 50); // next normal beat confirms
        t.log('holder after the confirming beat:', await described());
      } else {
        await sleep(2_000);
      }
      proxy.hold(); // B is partitioned from Redis (its process goes on)
      t.log(`partition at +${Date.now() - g} ms; B remainingMs ${Math.round(lb.remainingMs)}`);
      t.true(await until(async () => ((await entry())?.exp ?? 0) <= (await redisNow(fx.client)), 8_000, 50), 'Redis lets the lease run out');
      const lc = await C.lock('L').tryAcquire();
      t.truthy(lc, 'C holds the lock now');
      const bAborted = lb.signal.aborted;
      t.log(`+${Date.now() - g} ms: C holds (token ${lc?.token}); B signal.aborted=${bAborted}, B remainingMs=${Math.round(lb.remainingMs)}`);
      t.true(bAborted, 'B must have been told before C got the lock');
      await lc?.release();
    } finally {
      proxy.heal();
      await Promise.all([A.close(), C.close()]);
      await Promise.race([B.close(), sleep(3000)]);
      await proxy.stop();
      await Promise.all([cb.disconnect().catch(() => undefined), cc.disconnect().catch(() => undefined)]);
    }
  });
}
