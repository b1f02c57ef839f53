/**
 * Retries are harmless: a release, cancel, heartbeat, extend or acquire whose reply was
 * lost may be sent again. Each entry point is run twice directly through Scripts (the only caller of
 * the engine); the second run gives a sensible answer and changes nothing. An acquire is retried as
 * the client retries it: with `again` (Scripts sends "again" on its own re-send after a dropped
 * connection), which finds the waiter's queue element instead of pushing a second one; tickets are
 * gone, so the retry is told the same `since` and position.
 */
import test from 'ava';
import { lockKeys } from '../../src/protocol/keys.js';
import { Scripts } from '../../src/protocol/scripts.js';
import { adaptClient } from '../../src/redis/adapt.js';
import { newPrefix } from '../helpers/redis.js';
import { useRedis } from '../helpers/fixture.js';
import { holdersAt, redisNow } from '../helpers/state.js';

const LIVENESS = 2_000;
const fx = useRedis();

function setup() {
  const prefix = newPrefix();
  const scripts = new Scripts(adaptClient(fx.client), prefix);
  const keys = lockKeys(prefix, 'r');
  const id = (session: string, seq = 1, lease = 5000) => `${session}:${seq}:${lease}:1:1:x`;
  return { scripts, keys, id };
}

async function state(keys: ReturnType<typeof lockKeys>) {
  return { holders: await holdersAt(fx.client, keys.state), queue: (await fx.client.lRange(keys.queue, 0, -1)).map((e) => e.split(' ')[0]) };
}

test('acquire twice: same grant, or same since and position', async (t) => {
  const { scripts, keys, id } = setup();
  const a1 = await scripts.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1);
  const a2 = await scripts.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1, {});
  t.is(a1.kind, 'granted');
  t.like(a2, { kind: 'granted', token: (a1 as { token: number }).token });
  const b1 = await scripts.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1);
  const b2 = await scripts.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1, {}); // the first reply was lost: since unknown
  const b3 = await scripts.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1, { since: (b1 as { since: number }).since });
  t.like(b1, { kind: 'queued', position: 1 });
  t.like(b2, { kind: 'queued', position: 1, since: (b1 as { since: number }).since });
  t.like(b3, { kind: 'queued', position: 1, since: (b1 as { since: number }).since });
  t.is(await fx.client.lLen(keys.queue), 1);
});

test('release twice after a hand-off: released, then already; the new holder keeps the lock', async (t) => {
  const { scripts, keys, id } = setup();
  await scripts.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1);
  await scripts.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1);
  await scripts.acquire(keys, id('c'), LIVENESS, 'wait', 'lock', 1);
  t.is((await scripts.release(keys, id('a'))).kind, 'released');
  const after = await state(keys);
  t.deepEqual(after.holders.map((h) => h.id), [id('b')]);
  t.is((await scripts.release(keys, id('a'))).kind, 'already');
  t.is((await scripts.cancel(keys, id('a'))).kind, 'already', 'a cancel retried after the release is harmless too');
  t.deepEqual(await state(keys), after, 'the repeats changed nothing');
  t.is((await scripts.release(keys, id('c'))).kind, 'not-holder', 'a waiter is not the holder');
  t.deepEqual(await state(keys), after);
});

test('release twice with nobody waiting: released, then already; nothing left but the token counter', async (t) => {
  const { scripts, keys, id } = setup();
  await scripts.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1);
  t.is((await scripts.release(keys, id('a'))).kind, 'released');
  t.is((await scripts.release(keys, id('a'))).kind, 'already');
  t.deepEqual(await state(keys), { holders: [], queue: [] });
  t.truthy(await fx.client.hGet(keys.state, 't'), 'the token counter stays');
  t.is((await scripts.release(keys, id('x'))).kind, 'not-holder');
});

test('cancel twice: cancelled, then not-found; the queue is intact', async (t) => {
  const { scripts, keys, id } = setup();
  await scripts.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1);
  await scripts.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1);
  await scripts.acquire(keys, id('c'), LIVENESS, 'wait', 'lock', 1);
  t.is((await scripts.cancel(keys, id('b'))).kind, 'cancelled');
  const after = await state(keys);
  t.deepEqual(after.queue, [id('c')]);
  t.is((await scripts.cancel(keys, id('b'))).kind, 'not-found');
  t.deepEqual(await state(keys), after);
});

test('cancel twice of a waiter whose grant raced ahead: released (handed on), then already', async (t) => {
  const { scripts, keys, id } = setup();
  await scripts.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1);
  await scripts.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1);
  await scripts.acquire(keys, id('c'), LIVENESS, 'wait', 'lock', 1);
  await scripts.release(keys, id('a')); // b is granted; its cancel crosses the wake-up
  t.is((await scripts.cancel(keys, id('b'))).kind, 'released');
  const after = await state(keys);
  t.deepEqual(after.holders.map((h) => h.id), [id('c')], 'handed on to c');
  t.is((await scripts.cancel(keys, id('b'))).kind, 'already');
  t.is((await scripts.release(keys, id('b'))).kind, 'already');
  t.deepEqual(await state(keys), after);
});

test('heartbeat twice: same holder, lease not shortened, not lapsed the second time', async (t) => {
  const { scripts, keys, id } = setup();
  await scripts.acquire(keys, id('a', 1, 1000), LIVENESS, 'wait', 'lock', 1);
  const h1 = await scripts.heartbeat(keys, 'a', LIVENESS, { held: [id('a', 1, 1000)] });
  const h2 = await scripts.heartbeat(keys, 'a', LIVENESS, { held: [id('a', 1, 1000)] });
  t.true(h1.lapsed, 'an immediate grant registers no liveness: the first beat reports a lapse (acquire is then re-run, idempotently)');
  t.false(h2.lapsed);
  t.is(h2.holders[0]?.id, id('a', 1, 1000));
  t.is(h2.holders[0]?.token, h1.holders[0]?.token);
  t.true(h2.holders[0]!.exp >= h1.holders[0]!.exp);
  const entry = async () => (await holdersAt(fx.client, keys.state))[0];
  const held = await entry();
  const w1 = await scripts.heartbeat(keys, 'w', LIVENESS); // a session with no entry on this lock
  const w2 = await scripts.heartbeat(keys, 'w', LIVENESS);
  t.deepEqual(w1.holders, [], 'a session is told of its own holders only');
  t.deepEqual(w2.holders, []);
  t.deepEqual(await entry(), held, 'another session\'s beats leave the holder alone');
  t.is(held?.exp, h2.holders[0]?.exp);
  // A beat of the holder's own session that does not name the lease (the client no longer tracks it,
  // e.g. its release failed) does not renew it either: it runs out like a dead holder's.
  await new Promise((r) => setTimeout(r, 20));
  const o1 = await scripts.heartbeat(keys, 'a', LIVENESS);
  t.is(o1.holders[0]?.exp, h2.holders[0]?.exp, 'not renewed');
  const o2 = await scripts.heartbeat(keys, 'a', LIVENESS, { held: [id('a', 1, 1000)] });
  t.true(o2.holders[0]!.exp > h2.holders[0]!.exp, 'renewed when named');
});

test('extend twice: extended both times, the later deadline is not earlier', async (t) => {
  const { scripts, keys, id } = setup();
  await scripts.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1);
  const e1 = await scripts.extend(keys, id('a'), 3000);
  const e2 = await scripts.extend(keys, id('a'), 3000);
  t.is(e1.kind, 'extended');
  t.is(e2.kind, 'extended');
  t.true((e2 as { exp: number }).exp >= (e1 as { exp: number }).exp);
  t.true((await holdersAt(fx.client, keys.state))[0]!.exp - (await redisNow(fx.client)) > 2000);
  await scripts.release(keys, id('a'));
  t.is((await scripts.extend(keys, id('a'), 3000)).kind, 'not-holder', 'extend after release is refused, not a revival');
  t.deepEqual(await holdersAt(fx.client, keys.state), []);
});
