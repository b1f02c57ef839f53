/**
 * Found by a review; fixed: Lease.extend() calls state.leaseHeld(this) after its reply without checking that the
 * lease was released meanwhile. extend() racing release() puts the released lease back into the
 * LockState: the state never goes idle and beats for that lock until close().
 */
import test from 'ava';
import { FairLocks } from '../../src/index.js';
import { useRedis } from '../helpers/fixture.js';
import { newPrefix } from '../helpers/redis.js';
import { sleep } from '../helpers/proxy.js';

const fx = useRedis();

test('extend() racing release() does not bring the released lease back: the lock stops beating', async (t) => {
  const prefix = newPrefix();
  const F = new FairLocks(fx.client, { prefix, heartbeatMs: 100, livenessMs: 1000 });
  try {
    const lease = await F.lock('L').acquire();
    const ext = lease.extend(2_000).then(() => 'extended', (e: Error) => e.message);
    await lease.release();
    t.log('extend:', await ext);
    await sleep(300);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const state = (F as any).session.locks.get('L');
    const calls = async () => {
      const stats = await fx.client.info('commandstats');
      return ['evalsha', 'fcall'].reduce((n, c) => n + Number(new RegExp(`cmdstat_${c}:calls=(\\d+)`).exec(stats)?.[1] ?? 0), 0);
    };
    const c0 = await calls();
    await sleep(1000);
    const beats = (await calls()) - c0;
    t.log(`after release: state tracked=${Boolean(state)}, leases=${state?.leases.size}, engine calls in 1 s: ${beats}; lock: ${JSON.stringify(await F.inspect('L'))}`);
    t.falsy(state?.leases.size, 'a released lease is not tracked');
  } finally {
    await F.close();
  }
});
