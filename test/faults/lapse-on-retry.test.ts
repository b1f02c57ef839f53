/**
 * Found by a review; fixed: heartbeat.lua's `lapsed` bit is not safe to run twice. A session X is partitioned
 * longer than its liveness; meanwhile the holder releases and the hand-off reaps X's waiter as dead
 * (the lock goes idle). When the partition heals, X's buffered heartbeat runs (lapsed = 1, and it
 * refreshes the session), but the connection drops before the reply: the retried heartbeat answers
 * lapsed = 0, so X never re-enters its waiter, which then waits forever on a free lock.
 * The control heals without dropping the reply.
 */
import test from 'ava';
import { Redis } from 'ioredis';
import { FairLocks } from '../../src/index.js';
import { useRedis } from '../helpers/fixture.js';
import { connect, newPrefix } from '../helpers/redis.js';
import { engineMarker, sleep, startProxy, until } from '../helpers/proxy.js';

const fx = useRedis();
const HEARTBEAT = engineMarker('heartbeat');

for (const [family, drop] of [['node-redis', true], ['node-redis', false], ['ioredis', true]] as const) {
  test.serial(`${family}: partitioned waiter, heal ${drop ? 'losing the reply of the first heartbeat' : '(control)'}`, async (t) => {
    const prefix = newPrefix();
    const proxy = await startProxy(fx.server.port);
    const cx = family === 'ioredis' ? new Redis(proxy.port, '127.0.0.1', { lazyConnect: false }) : await connect(proxy.url);
    if (family === 'ioredis') { (cx as Redis).on('error', () => undefined); await (cx as Redis).ping(); }
    const H = new FairLocks(fx.client, { prefix });
    const X = new FairLocks(cx as never, { prefix, livenessMs: 1_000, heartbeatMs: 300 });
    let settled: string | undefined;
    try {
      const lh = await H.lock('L').acquire();
      let queued = false;
      const px = X.lock('L').acquire({ onQueued: () => (queued = true) });
      px.then(
        (l) => ((settled = 'granted'), l),
        (e: Error) => (settled = `rejected ${e.message}`),
      );
      t.true(await until(() => queued, 5_000));
      await sleep(400); // let a beat or two pass
      proxy.hold();
      await sleep(1_800); // > livenessMs: X's session has lapsed in Redis
      await lh.release(); // the hand-off reaps X's waiter as dead; the lock is idle
      const mid = await H.inspect('L');
      t.log('after the release:', JSON.stringify(mid));
      if (drop) proxy.dropReplyAfter(HEARTBEAT);
      proxy.heal();
      const got = await until(() => settled !== undefined, 5_000, 50);
      const end = await H.inspect('L');
      t.log(`dropped replies: ${proxy.dropped}; after 5 s: waiter ${settled ?? 'still pending'}; lock: ${JSON.stringify(end)}`);
      t.true(got, 'the waiter must get the free lock');
      if (settled === 'granted') await (await px).release();
    } finally {
      proxy.heal();
      await H.close();
      await Promise.race([X.close(), sleep(3000)]);
      await proxy.stop();
      await Promise.resolve((cx as { disconnect(): unknown }).disconnect()).catch(() => undefined);
    }
  });
}
