/**
 * Orphaned grants (found by the chaos run): a grant in Redis that its own process no longer tracks
 * (its release or cancel failed on a dropped connection, or its lease was lost and the release that
 * followed failed) must run out like a dead holder's, even while the same session keeps beating on
 * that lock for another waiter. Before the fix, the heartbeat renewed every owner of its session,
 * so such an orphan was renewed forever and the session's own next waiter waited forever.
 */
import { isEngineCall } from '../../src/protocol/scripts.js';
import test from 'ava';
import { lockKeys } from '../../src/protocol/keys.js';
import { Scripts } from '../../src/protocol/scripts.js';
import { adaptClient } from '../../src/redis/adapt.js';
import { newPrefix } from '../helpers/redis.js';
import { useRedis } from '../helpers/fixture.js';
import { newLocks, openClient } from '../helpers/cleanup.js';

const OPTS = { leaseMs: 600, livenessMs: 600, heartbeatMs: 150 };
const fx = useRedis();

test('a holder its session no longer tracks is not renewed: the session\'s next waiter gets the lock within a lease', async (t) => {
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const keys = lockKeys(prefix, 'o');
  // The orphan: a grant to this session's id that the FairLocks instance never saw (as after a
  // release whose command died with its connection).
  const orphan = `${locks.sessionId}:zz:${OPTS.leaseMs}:1:1:x`;
  const r = await new Scripts(adaptClient(client), prefix).acquire(keys, orphan, OPTS.livenessMs, 'wait', 'lock', 1);
  t.is(r.kind, 'granted');
  const started = Date.now();
  const lease = await locks.lock('o').acquire({ timeoutMs: 5_000 });
  const waited = Date.now() - started;
  t.log(`granted after ${waited} ms`);
  t.true(waited <= OPTS.leaseMs + OPTS.heartbeatMs + 1500, 'within one lease + one heartbeat (with slack)');
  t.true(lease.token > (r as { token: number }).token);
  await lease.release();
  await locks.close();
  await client.quit();
});

test('a lease whose release failed is not renewed by the beats its session keeps sending for the lock', async (t) => {
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const lock = locks.lock('f');
  const first = await lock.acquire();
  const second = lock.acquire({ timeoutMs: 5_000 }); // same session, same lock: its beats go on
  // Make the release fail as a dropped connection would: the client is closed under it.
  const orig = client.sendCommand.bind(client);
  let fail = true;
  (client as unknown as { sendCommand: typeof client.sendCommand }).sendCommand = ((args: string[], ...rest: unknown[]) => {
    if (fail && isEngineCall(args, 'release') && args[5] === first.id) {
      fail = false;
      return Promise.reject(new Error('connection lost (simulated)'));
    }
    return (orig as (...a: unknown[]) => unknown)(args, ...rest);
  }) as typeof client.sendCommand;
  await t.throwsAsync(first.release());
  const next = await second;
  t.true(next.token > first.token);
  await next.release();
  await locks.close();
  await client.quit();
});

test('a release whose connection is killed before Redis ran it is sent again on the reconnected client', async (t) => {
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const admin = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const lease = await locks.lock('k').acquire();
  const waiting = locks.lock('k').acquire({ timeoutMs: 10_000 });
  const id = await client.clientId();
  // Hold every write (the engine's calls included) so the release sits unanswered, then drop its connection.
  await admin.sendCommand(['CLIENT', 'PAUSE', '400', 'WRITE']);
  const releasing = lease.release();
  await new Promise((r) => setTimeout(r, 100));
  t.is(Number(await admin.sendCommand(['CLIENT', 'KILL', 'ID', String(id)])), 1);
  await t.notThrowsAsync(releasing, 'the release was retried, not failed');
  const next = await waiting;
  t.true(next.token > lease.token);
  await next.release();
  await locks.close();
  await client.quit();
  await admin.quit();
});

test('a hand-off to a lease longer than liveness (autoRenew off) is confirmed to its full lease once the client names it', async (t) => {
  // A roomier liveness than OPTS: the first confirming beat must land before the capped grant runs
  // out, and on a loaded 2-core machine 450 ms was sometimes not enough. Still lease > liveness.
  const opts = { ...OPTS, livenessMs: 1_200 };
  const prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const a = newLocks(t, client, { prefix, ...opts });
  const b = newLocks(t, client, { prefix, ...opts });
  const first = await a.lock('c').acquire();
  const pending = b.lock('c').acquire({ leaseMs: 2500, autoRenew: false, timeoutMs: 5_000 });
  await new Promise((r) => setTimeout(r, 2 * opts.heartbeatMs));
  await first.release(); // the grant starts capped at b's liveness deadline
  const lease = await pending;
  const third = a.lock('c').acquire({ timeoutMs: 5_000 });
  await new Promise((r) => setTimeout(r, opts.livenessMs + 4 * opts.heartbeatMs));
  t.false(lease.signal.aborted, 'still held past its liveness: the heartbeat confirmed the full lease');
  const info = await a.inspect('c');
  t.is(info.holder?.token, lease.token);
  t.true(info.holder!.leaseLeftMs > 0);
  await lease.release();
  await (await third).release();
  await a.close();
  await b.close();
  await client.quit();
});
