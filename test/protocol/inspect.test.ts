/**
 * The engine's inspect, driven directly (the header of src/protocol/lua/engine.lua is the spec): read
 * only; the name's "kind limit", its holders with the deadline each may use (an unconfirmed hand-off
 * reports min(exp, granted + lease)) and the time each was granted (or confirmed), the live part of
 * the queue in order with the time each waiter entered it (waiters of dead sessions left out), at
 * most `limit` entries, and the last ids that gave a grant up, newest first. Queue entries carry
 * `since` where they carried a ticket: tickets are gone.
 */
import test from 'ava';
import { lockKeys, waiterId } from '../../src/protocol/keys.js';
import { useRedis } from '../helpers/fixture.js';
import { holdersAt } from '../helpers/state.js';
import { sleep, LIVENESS, expectKind, kit } from './kit.js';

const fx = useRedis();
const { setup } = kit(fx);

/** Everything under the name's keys, to show that inspect wrote nothing. */
async function snapshot(keys: ReturnType<typeof lockKeys>) {
  return {
    state: await fx.client.hGetAll(keys.state),
    queue: await fx.client.lRange(keys.queue, 0, -1),
  };
}

test('an unused name: no kind, no holders, no queue, and nothing written', async (t) => {
  const { s, keys } = setup();
  const r = await s.inspect(keys, 10);
  t.is(r.kindLimit, '');
  t.deepEqual(r.holders, []);
  t.deepEqual(r.queue, []);
  t.deepEqual(r.released, []);
  t.true(r.now > 0);
  t.is(await fx.client.exists([keys.state, keys.queue]), 0);
});

test('the kind and limit, and the holders with their deadlines', async (t) => {
  const { s, keys } = setup();
  const a = waiterId('a', 1, 5_000, true, 2, 'x');
  const b = waiterId('b', 1, 3_000, false, 1, 'x');
  const ga = expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'semaphore', 3), 'granted');
  const gb = expectKind(await s.acquire(keys, b, LIVENESS, 'wait', 'semaphore', 3), 'granted');
  const r = await s.inspect(keys, 10);
  t.is(r.kindLimit, 'semaphore 3');
  t.deepEqual(
    [...r.holders].sort((x, y) => x.token - y.token),
    [
      { id: a, token: ga.token, exp: ga.exp, grantedAt: ga.now, group: '' },
      { id: b, token: gb.token, exp: gb.exp, grantedAt: gb.now, group: '' },
    ],
  );
  t.deepEqual(r.queue, []);

  const rw = setup();
  expectKind(await rw.s.acquire(rw.keys, waiterId('r', 1, 5_000, true, 1, 'r'), LIVENESS, 'wait', 'rw', 0), 'granted');
  t.is((await rw.s.inspect(rw.keys, 10)).kindLimit, 'rw 0');
});

test('an unconfirmed hand-off is reported with min(exp, granted + lease), and left unconfirmed', async (t) => {
  const { s, keys } = setup();
  const h = waiterId('h', 1, 5_000, true, 1, 'x');
  const w = waiterId('w', 1, 300, false, 1, 'x');
  expectKind(await s.acquire(keys, h, LIVENESS, 'wait', 'lock', 1), 'granted');
  const qw = expectKind(await s.acquire(keys, w, LIVENESS, 'wait', 'lock', 1), 'queued');
  const rel = await s.release(keys, h);
  const [e] = await holdersAt(fx.client, keys.state);
  t.is(await fx.client.hGet(keys.state, 'h'), `${w} ${e!.token} ${qw.now + LIVENESS} 300 ${rel.now} 0`, 'in Redis: until the session deadline');
  const before = await snapshot(keys);
  const r = await s.inspect(keys, 10);
  t.deepEqual(r.holders, [{ id: w, token: e!.token, exp: rel.now + 300, grantedAt: rel.now, group: '' }], 'the deadline the holder may use');
  t.deepEqual(r.released, [h]);
  t.deepEqual(await snapshot(keys), before, 'read only');

  // A session deadline sooner than granted + lease is reported as it is.
  const n = setup();
  const h2 = waiterId('h', 1, 5_000, true, 1, 'x');
  const w2 = waiterId('w', 1, 60_000, false, 1, 'x');
  expectKind(await n.s.acquire(n.keys, h2, LIVENESS, 'wait', 'lock', 1), 'granted');
  const q2 = expectKind(await n.s.acquire(n.keys, w2, LIVENESS, 'wait', 'lock', 1), 'queued');
  const rel2 = await n.s.release(n.keys, h2);
  const token2 = (await holdersAt(fx.client, n.keys.state))[0]?.token;
  t.deepEqual((await n.s.inspect(n.keys, 10)).holders, [{ id: w2, token: token2, exp: q2.now + LIVENESS, grantedAt: rel2.now, group: '' }]);
});

test('a holder whose deadline passed is left out but not deleted (read only)', async (t) => {
  const { s, keys } = setup();
  const a = waiterId('a', 1, 100, false, 1, 'x');
  expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'granted');
  await sleep(300);
  const r = await s.inspect(keys, 10);
  t.deepEqual(r.holders, []);
  t.is(r.kindLimit, 'lock 1');
  t.deepEqual((await holdersAt(fx.client, keys.state)).map((h) => h.id), [a], 'the entry stays until a writing call drops it');
});

test('the live queue only, in order, with since; at most limit entries', async (t) => {
  const { s, keys } = setup();
  const h = waiterId('h', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, h, LIVENESS, 'wait', 'lock', 1), 'granted');
  const a = waiterId('a', 1, 5_000, true, 1, 'x');
  const d1 = waiterId('d', 1, 5_000, true, 1, 'x');
  const b = waiterId('b', 1, 5_000, true, 1, 'x');
  const d2 = waiterId('d', 2, 5_000, true, 1, 'x');
  const c = waiterId('c', 1, 5_000, true, 1, 'x');
  const qa = expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'queued');
  expectKind(await s.acquire(keys, d1, 100, 'wait', 'lock', 1), 'queued');
  const qb = expectKind(await s.acquire(keys, b, LIVENESS, 'wait', 'lock', 1), 'queued');
  expectKind(await s.acquire(keys, d2, 100, 'wait', 'lock', 1), 'queued');
  const qc = expectKind(await s.acquire(keys, c, LIVENESS, 'wait', 'lock', 1), 'queued');
  await sleep(300); // session d's 100 ms liveness runs out
  const before = await snapshot(keys);
  const all = await s.inspect(keys, 100);
  t.deepEqual(all.queue, [
    { id: a, since: qa.since, group: '' },
    { id: b, since: qb.since, group: '' },
    { id: c, since: qc.since, group: '' },
  ]);
  t.is(before.queue.length, 5, 'the dead waiters are still queued in Redis');
  t.deepEqual(await snapshot(keys), before, 'read only');

  t.deepEqual(
    (await s.inspect(keys, 2)).queue,
    [
      { id: a, since: qa.since, group: '' },
      { id: b, since: qb.since, group: '' },
    ],
    'limit 2: two live entries (the dead one between them not counted)',
  );
  t.deepEqual((await s.inspect(keys, 1)).queue, [{ id: a, since: qa.since, group: '' }]);
  t.deepEqual((await s.inspect(keys, 0)).queue, []);
});

test('released: the last ids that gave a grant up, newest first; read only', async (t) => {
  const { s, keys } = setup();
  const ids = ['a', 'b', 'c'].map((sid) => waiterId(sid, 1, 5_000, true, 1, 'x'));
  for (const id of ids) {
    expectKind(await s.acquire(keys, id, LIVENESS, 'wait', 'lock', 1), 'granted');
    t.is((await s.release(keys, id)).kind, 'released');
  }
  const before = await snapshot(keys);
  const r = await s.inspect(keys, 10);
  t.deepEqual(r.released, [...ids].reverse());
  t.deepEqual(r.holders, []);
  t.is(r.kindLimit, 'lock 1');
  t.deepEqual(await snapshot(keys), before, 'read only');
});
