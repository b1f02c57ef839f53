/**
 * Found by a review; fixed: LockState.retryRelease() does `session.locks.set(name, this)`. If the state had gone
 * idle (and was dropped from session.locks) when its release started, and a new acquire() of the same
 * name made a new LockState meanwhile, the failed release puts the old state back over the new one.
 * The new state's waiter is then invisible to close() (it is never rejected: it hangs) and to beatAll().
 *
 * The failure is injected by a thin wrapper around a real node-redis client: the release script
 * fails with an error Redis could answer (LOADING, BUSY, READONLY, OOM, ...) or that ioredis gives
 * (MaxRetriesPerRequestError, commandTimeout).
 */
import test from 'ava';
import { FairLocks } from '../../src/index.js';
import { useRedis } from '../helpers/fixture.js';
import { connect, newPrefix } from '../helpers/redis.js';
import { sleep, until } from '../helpers/proxy.js';
import { isEngineCall } from '../../src/protocol/scripts.js';

const fx = useRedis();

test('a release that failed after its lock state went idle is retried by the live state; close() ends every waiter', async (t) => {
  const prefix = newPrefix();
  const real = await connect(fx.server.url);
  let gate: Promise<void> | undefined;
  let open!: () => void;
  const wrapped = {
    isOpen: true,
    options: {},
    duplicate: () => real.duplicate(),
    sendCommand: async (args: string[]) => {
      if (gate && isEngineCall(args, 'release')) {
        await gate;
        throw new Error('LOADING Redis is loading the dataset in memory'); // as Redis would answer
      }
      return real.sendCommand(args);
    },
  };
  const F = new FairLocks(wrapped as never, { prefix });
  const G = new FairLocks(fx.client, { prefix });
  let settled: string | undefined;
  try {
    const l1 = await F.lock('L').acquire();
    let gQueued = false;
    const pg = G.lock('L').acquire({ onQueued: () => (gQueued = true) });
    t.true(await until(() => gQueued, 5_000));
    gate = new Promise<void>((r) => (open = r));
    const rel = l1.release().then(
      () => 'ok',
      (e: Error) => e.message,
    ); // the state goes idle and leaves session.locks; the release waits at the gate
    let q2 = false;
    const p2 = F.lock('L').acquire({ onQueued: () => (q2 = true) }); // a new LockState for "L"
    p2.then(
      () => (settled = 'granted'),
      (e: Error) => (settled = `rejected: ${e.name}`),
    );
    t.true(await until(() => q2, 5_000));
    open();
    gate = undefined;
    t.log('first release:', await rel); // failed: the old state is back in session.locks
    const lg = await pg; // the heartbeat's "-id" released it in Redis: G holds, F's waiter queued behind
    t.log('G holds; F waiter', settled ?? 'pending');
    await Promise.race([F.close(), sleep(8_000)]);
    await until(() => settled !== undefined, 3_000, 50);
    t.log('after F.close(): F waiter', settled ?? 'still pending');
    await lg.release();
    t.is(settled, 'rejected: ClosedError', 'close() rejects every wait of the instance');
  } finally {
    await Promise.race([F.close(), sleep(3000)]);
    await G.close();
    await real.disconnect().catch(() => undefined);
  }
});
