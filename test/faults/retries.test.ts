/**
 * Retries are harmless (DESIGN §3): a release, cancel, heartbeat, extend or acquire whose reply was
 * lost may be sent again. Each script is run twice directly through Scripts (the only EVALSHA caller);
 * the second run gives a sensible answer and changes nothing.
 */
import test from 'ava';
import { lockKeys } from '../../src/keys.js';
import { Scripts } from '../../src/scripts.js';
import { newPrefix } from '../helpers/redis.js';
import { useRedis } from '../helpers/fixture.js';

const LIVENESS = 2_000;
const fx = useRedis();

function setup() {
  const prefix = newPrefix();
  const scripts = new Scripts(fx.client, prefix);
  const keys = lockKeys(prefix, 'r');
  const id = (session: string, seq = 1, lease = 5000) => `${session}:${seq}:${lease}:1`;
  return { scripts, keys, id };
}

async function state(keys: ReturnType<typeof lockKeys>) {
  return { owner: await fx.client.get(keys.owner), queue: await fx.client.zRange(keys.queue, 0, -1) };
}

test('acquire twice: same grant, or same ticket and position', async (t) => {
  const { scripts, keys, id } = setup();
  const a1 = await scripts.acquire(keys, id('a'), LIVENESS, 'wait');
  const a2 = await scripts.acquire(keys, id('a'), LIVENESS, 'wait');
  t.is(a1.kind, 'granted');
  t.like(a2, { kind: 'granted', token: (a1 as { token: number }).token });
  const b1 = await scripts.acquire(keys, id('b'), LIVENESS, 'wait');
  const b2 = await scripts.acquire(keys, id('b'), LIVENESS, 'wait');
  t.like(b1, { kind: 'queued', position: 1 });
  t.like(b2, { kind: 'queued', position: 1, ticket: (b1 as { ticket: number }).ticket });
  t.is(await fx.client.zCard(keys.queue), 1);
});

test('release twice after a hand-off: released, then already; the new owner keeps the lock', async (t) => {
  const { scripts, keys, id } = setup();
  await scripts.acquire(keys, id('a'), LIVENESS, 'wait');
  await scripts.acquire(keys, id('b'), LIVENESS, 'wait');
  await scripts.acquire(keys, id('c'), LIVENESS, 'wait');
  t.is((await scripts.release(keys, id('a'))).kind, 'released');
  const after = await state(keys);
  t.true(after.owner?.startsWith(id('b') + ' '));
  t.is((await scripts.release(keys, id('a'))).kind, 'already');
  t.is((await scripts.cancel(keys, id('a'))).kind, 'already', 'a cancel retried after the release is harmless too');
  t.deepEqual(await state(keys), after, 'the repeats changed nothing');
  t.is((await scripts.release(keys, id('c'))).kind, 'not-holder', 'a waiter is not the holder');
  t.deepEqual(await state(keys), after);
});

test('release twice with nobody waiting: released, then already; nothing left but the counter', async (t) => {
  const { scripts, keys, id } = setup();
  await scripts.acquire(keys, id('a'), LIVENESS, 'wait');
  t.is((await scripts.release(keys, id('a'))).kind, 'released');
  t.is((await scripts.release(keys, id('a'))).kind, 'already');
  t.deepEqual(await state(keys), { owner: null, queue: [] });
  t.is((await scripts.release(keys, id('x'))).kind, 'not-holder');
});

test('cancel twice: cancelled, then not-found; the queue is intact', async (t) => {
  const { scripts, keys, id } = setup();
  await scripts.acquire(keys, id('a'), LIVENESS, 'wait');
  await scripts.acquire(keys, id('b'), LIVENESS, 'wait');
  await scripts.acquire(keys, id('c'), LIVENESS, 'wait');
  t.is((await scripts.cancel(keys, id('b'))).kind, 'cancelled');
  const after = await state(keys);
  t.deepEqual(after.queue, [id('c')]);
  t.is((await scripts.cancel(keys, id('b'))).kind, 'not-found');
  t.deepEqual(await state(keys), after);
});

test('cancel twice of a waiter whose grant raced ahead: released (handed on), then already', async (t) => {
  const { scripts, keys, id } = setup();
  await scripts.acquire(keys, id('a'), LIVENESS, 'wait');
  await scripts.acquire(keys, id('b'), LIVENESS, 'wait');
  await scripts.acquire(keys, id('c'), LIVENESS, 'wait');
  await scripts.release(keys, id('a')); // b is granted; its cancel crosses the wake-up
  t.is((await scripts.cancel(keys, id('b'))).kind, 'released');
  const after = await state(keys);
  t.true(after.owner?.startsWith(id('c') + ' '), 'handed on to c');
  t.is((await scripts.cancel(keys, id('b'))).kind, 'already');
  t.is((await scripts.release(keys, id('b'))).kind, 'already');
  t.deepEqual(await state(keys), after);
});

test('heartbeat twice: same owner, lease not shortened, not lapsed the second time', async (t) => {
  const { scripts, keys, id } = setup();
  await scripts.acquire(keys, id('a', 1, 1000), LIVENESS, 'wait');
  const h1 = await scripts.heartbeat(keys, 'a', LIVENESS, [id('a', 1, 1000)]);
  const h2 = await scripts.heartbeat(keys, 'a', LIVENESS, [id('a', 1, 1000)]);
  t.true(h1.lapsed, 'an immediate grant registers no liveness: the first beat reports a lapse (acquire is then re-run, idempotently)');
  t.false(h2.lapsed);
  t.is(h2.owner?.id, id('a', 1, 1000));
  t.is(h2.owner?.token, h1.owner?.token);
  t.true(h2.owner!.exp >= h1.owner!.exp);
  const w1 = await scripts.heartbeat(keys, 'w', LIVENESS); // a session with no entry on this lock
  const w2 = await scripts.heartbeat(keys, 'w', LIVENESS);
  t.is(w1.owner?.id, id('a', 1, 1000));
  t.is(w2.owner?.id, id('a', 1, 1000), 'another session\'s beats leave the owner alone');
  t.is(w2.owner?.exp, h2.owner?.exp);
  // A beat of the owner's own session that does not name the lease (the client no longer tracks it,
  // e.g. its release failed) does not renew it either: it runs out like a dead holder's.
  await new Promise((r) => setTimeout(r, 20));
  const o1 = await scripts.heartbeat(keys, 'a', LIVENESS);
  t.is(o1.owner?.exp, h2.owner?.exp, 'not renewed');
  const o2 = await scripts.heartbeat(keys, 'a', LIVENESS, [id('a', 1, 1000)]);
  t.true(o2.owner!.exp > h2.owner!.exp, 'renewed when named');
});

test('extend twice: extended both times, the later deadline is not earlier', async (t) => {
  const { scripts, keys, id } = setup();
  await scripts.acquire(keys, id('a'), LIVENESS, 'wait');
  const e1 = await scripts.extend(keys, id('a'), 3000);
  const e2 = await scripts.extend(keys, id('a'), 3000);
  t.is(e1.kind, 'extended');
  t.is(e2.kind, 'extended');
  t.true((e2 as { exp: number }).exp >= (e1 as { exp: number }).exp);
  t.true((await fx.client.pTTL(keys.owner)) > 2000);
  await scripts.release(keys, id('a'));
  t.is((await scripts.extend(keys, id('a'), 3000)).kind, 'not-holder', 'extend after release is refused, not a revival');
  t.is(await fx.client.get(keys.owner), null);
});
