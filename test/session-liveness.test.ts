/**
 * An acquire that refreshes a lapsed session reports the lapse, and a hand-off grant lives in Redis until
 * the waiter session's liveness deadline while the wake-up tells the waiter its own, shorter lease.
 */
import test from 'ava';
import { createClient } from 'redis';
import { lockKeys } from '../src/protocol/keys.js';
import { Scripts } from '../src/protocol/scripts.js';
import { adaptClient } from '../src/redis/adapt.js';
import type { RedisClient } from './helpers/redis-client.js';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';
import { track } from './helpers/cleanup.js';
import { holdersAt, redisNow } from './helpers/state.js';

const fx = useRedis();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('an acquire that revives a lapsed session says so, so its other waiters re-check (else one could wait forever)', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(adaptClient(fx.client), prefix);
  const keys = lockKeys(prefix, 'l');
  t.is((await s.acquire(keys, 'holder:1:5000:1:1:x', 5_000, 'wait', 'lock', 1)).kind, 'granted');
  const first = await s.acquire(keys, 'sess:1:5000:1:1:x', 200, 'wait', 'lock', 1);
  t.true(first.kind === 'queued' && first.lapsed, 'a session seen for the first time counts as lapsed');
  const again = await s.acquire(keys, 'sess:2:5000:1:1:x', 200, 'wait', 'lock', 1);
  t.true(again.kind === 'queued' && !again.lapsed, 'alive: no lapse');
  await sleep(300); // the session's 200 ms liveness runs out
  const revived = await s.acquire(keys, 'sess:3:5000:1:1:x', 200, 'wait', 'lock', 1);
  t.true(revived.kind === 'queued' && revived.lapsed, 'the acquire reports the lapse it is about to hide from the heartbeat');
  const beat = await s.heartbeat(keys, 'sess', 200);
  t.false(beat.lapsed, 'the heartbeat no longer sees it: only the acquire reply could tell');
});

test('a grant to a waiter whose lease is shorter than a heartbeat outlives that heartbeat in Redis; the wake-up still carries the short lease', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(adaptClient(fx.client), prefix);
  const keys = lockKeys(prefix, 'g');
  const sub = track(t, createClient({ url: fx.server.url }) as RedisClient);
  await sub.connect();
  const messages: string[] = [];
  await sub.subscribe(`${prefix}:wake:w`, (m) => messages.push(m));
  const first = await s.acquire(keys, 'h:1:5000:1:1:x', 5_000, 'wait', 'lock', 1);
  const queued = await s.acquire(keys, 'w:1:300:1:1:x', 5_000, 'wait', 'lock', 1); // 300 ms lease, 5 s liveness
  t.is(queued.kind, 'queued');
  await s.release(keys, 'h:1:5000:1:1:x');
  for (let i = 0; i < 100 && messages.length === 0; i++) await sleep(10);
  const [id, token, exp] = messages[0]!.split(' ');
  t.is(id, 'w:1:300:1:1:x');
  t.true(Number(token) > (first.kind === 'granted' ? first.token : Infinity), 'the hand-off carries a token above the first holder\'s');
  const entry = (await holdersAt(fx.client, keys.state)).find((h) => h.id === id);
  t.is(Number(token), entry?.token ?? -1, 'the wake-up carries the token taken at the grant');
  const ttl = entry ? entry.exp - (await redisNow(fx.client)) : -2;
  t.true(ttl > 1_500, `the holder entry lives until the session's liveness deadline (${ttl} ms), past the next heartbeat`);
  const now = Number((await fx.client.time()).getTime());
  t.true(Number(exp) - now <= 300, 'the waiter is told its own 300 ms lease');
  // Had the wake-up been lost, the session's next heartbeat still finds the grant.
  await sleep(1_000);
  const beat = await s.heartbeat(keys, 'w', 5_000);
  t.is(beat.holders[0]?.id, 'w:1:300:1:1:x');
  await sub.quit();
});
