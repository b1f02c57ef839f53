/** Regressions for bugs a review of the core found (each test failed before its fix). */
import test from 'ava';
import { createClient } from 'redis';
import { lockKeys } from '../src/keys.js';
import { Scripts } from '../src/scripts.js';
import type { RedisClient } from './helpers/redis-client.js';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';
import { newLocks, track } from './helpers/cleanup.js';

const fx = useRedis();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('an acquire that revives a lapsed session says so, so its other waiters re-check (else one could wait forever)', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(fx.client, prefix);
  const keys = lockKeys(prefix, 'l');
  t.is((await s.acquire(keys, 'holder:1:5000:1', 5_000, 'wait')).kind, 'granted');
  const first = await s.acquire(keys, 'sess:1:5000:1', 200, 'wait');
  t.true(first.kind === 'queued' && first.lapsed, 'a session seen for the first time counts as lapsed');
  const again = await s.acquire(keys, 'sess:2:5000:1', 200, 'wait');
  t.true(again.kind === 'queued' && !again.lapsed, 'alive: no lapse');
  await sleep(300); // the session's 200 ms liveness runs out
  const revived = await s.acquire(keys, 'sess:3:5000:1', 200, 'wait');
  t.true(revived.kind === 'queued' && revived.lapsed, 'the acquire reports the lapse it is about to hide from the heartbeat');
  const beat = await s.heartbeat(keys, 'sess', 200);
  t.false(beat.lapsed, 'the heartbeat no longer sees it: only the acquire reply could tell');
});

test('a grant to a waiter whose lease is shorter than a heartbeat outlives that heartbeat in Redis; the wake-up still carries the short lease', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(fx.client, prefix);
  const keys = lockKeys(prefix, 'g');
  const sub = track(t, createClient({ url: fx.server.url }) as RedisClient);
  await sub.connect();
  const messages: string[] = [];
  await sub.subscribe(`${prefix}:wake:w`, (m) => messages.push(m));
  await s.acquire(keys, 'h:1:5000:1', 5_000, 'wait');
  const queued = await s.acquire(keys, 'w:1:300:1', 5_000, 'wait'); // 300 ms lease, 5 s liveness
  await s.release(keys, 'h:1:5000:1');
  for (let i = 0; i < 100 && messages.length === 0; i++) await sleep(10);
  const [id, token, exp] = messages[0]!.split(' ');
  t.is(id, 'w:1:300:1');
  t.is(Number(token), queued.kind === 'queued' ? queued.ticket : -1);
  const ttl = await fx.client.pTTL(keys.owner);
  t.true(ttl > 1_500, `the owner key lives until the session's liveness deadline (${ttl} ms), past the next heartbeat`);
  const now = Number((await fx.client.time()).getTime());
  t.true(Number(exp) - now <= 300, 'the waiter is told its own 300 ms lease');
  // Had the wake-up been lost, the session's next heartbeat still finds the grant.
  await sleep(1_000);
  const beat = await s.heartbeat(keys, 'w', 5_000);
  t.is(beat.owner?.id, 'w:1:300:1');
  await sub.quit();
});

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
