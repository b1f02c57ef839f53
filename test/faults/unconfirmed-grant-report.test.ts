/**
 * A grant that a confirming heartbeat hands on to another waiter of the same session is reported with
 * the deadline its holder may use, never the session's liveness deadline: when that holder is then
 * partitioned, its signal aborts before Redis grants the lock to another session. (A slow Redis is made
 * with CLIENT PAUSE; the state's beat() is called at a chosen moment.)
 */
import test from 'ava';
import { FairLocks } from '../../src/index.js';
import { lockKeys } from '../../src/protocol/keys.js';
import { useRedis } from '../helpers/fixture.js';
import { connect, newPrefix } from '../helpers/redis.js';
import { sleep, startProxy, until } from '../helpers/proxy.js';
import { engineCall } from '../../src/protocol/scripts.js';
import { holdersAt, redisNow } from '../helpers/state.js';

const fx = useRedis();

test('a grant the confirming beat hands on to the same session is reported with the deadline its holder may use, not the liveness deadline', async (t) => {
  const prefix = newPrefix();
  const keys = lockKeys(prefix, 'L');
  const proxy = await startProxy(fx.server.port);
  const cx = await connect(proxy.url);
  const cp = await connect(fx.server.url); // for CLIENT PAUSE
  const H = new FairLocks(fx.client, { prefix });
  const X = new FairLocks(cx, { prefix, livenessMs: 20_000, heartbeatMs: 5_000 });
  const Y = new FairLocks(fx.client, { prefix, livenessMs: 1_000, heartbeatMs: 100 });
  try {
    // Loaded up front: a first call that loads the library (FCALL, FUNCTION LOAD, FCALL) would let
    // the release that X's lost-lease timer sends overtake X's heartbeat on the connection.
    // On 6.2 (no Functions) the engine runs by EVALSHA: its scripts are loaded up front instead.
    await fx.client.sendCommand(['FUNCTION', 'LOAD', 'REPLACE', engineCall('acquire').library]).catch(async () => {
      for (const name of ['heartbeat', 'release', 'acquire'] as const) await fx.client.scriptLoad(engineCall(name).body);
    });
    const lh = await H.lock('L').acquire();
    let q = 0;
    const p1 = X.lock('L').acquire({ leaseMs: 300, autoRenew: false, onQueued: () => q++ });
    await until(() => q === 1, 5_000);
    const p2 = X.lock('L').acquire({ leaseMs: 1_000, onQueued: () => q++ });
    await until(() => q === 2, 5_000);
    let yGot = false;
    const py = Y.lock('L').acquire({ onQueued: () => q++ }).then((l) => ((yGot = true), l));
    await until(() => q === 3, 5_000);
    await lh.release();
    const l1 = await p1; // unconfirmed hand-off grant, lease 300 ms, not renewed
    t.log(`L1 remainingMs ${Math.round(l1.remainingMs)}`);
    await cp.sendCommand(['CLIENT', 'PAUSE', '500', 'ALL']);
    t.log('paused at', Date.now()); // Redis is slow for half a second
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    void (X as any).session.locks.get('L').beat(); // X's heartbeat fires now (names L1); it runs after g + 300
    const l2 = await p2;
    t.log('W2 at', Date.now());

    await sleep(50);
    const entry = async () => JSON.stringify((await holdersAt(fx.client, keys.state)).find((h) => h.id === l2.id) ?? null);
    t.log(`W2 granted (lease 1000): remainingMs ${Math.round(l2.remainingMs)}; holder entry ${await entry()}`);
    // X's regular beats (period min(5000, 1000/3)) confirm W2 at now + 1000; then X is partitioned.
    await sleep(800);
    t.log(`before the partition: W2 remainingMs ${Math.round(l2.remainingMs)}, holder entry ${await entry()} at Redis time ${await redisNow(fx.client)}`);
    proxy.hold();
    const gotY = await until(() => yGot, 6_000, 20);
    t.log(`Y holds: ${gotY}; W2 signal.aborted=${l2.signal.aborted}, W2 remainingMs=${Math.round(l2.remainingMs)}`);
    t.true(gotY);
    t.true(l2.signal.aborted, 'W2 must have been told before Y got the lock');
    if (gotY) await (await py).release();
  } finally {
    proxy.heal();
    await Promise.all([H.close(), Y.close()]);
    await Promise.race([X.close(), sleep(3000)]);
    await proxy.stop();
    await Promise.all([cx.disconnect().catch(() => undefined), cp.disconnect().catch(() => undefined)]);
  }
});
