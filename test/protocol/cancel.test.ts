/**
 * The engine's cancel, driven directly (the header of src/protocol/lua/engine.lua is the spec): a
 * waiter leaves the queue (cancelled), a waiter whose grant raced ahead of the cancel is released on
 * the spot (released), a repeat after that answers already, an id never queued answers not-found;
 * either way the waiters that fit now are granted (a head that did not fit may have held the others
 * back). The queue is a list of "id since" elements: a cancel that knows `since` removes that element,
 * one that does not (its enqueue reply was lost) finds the element by the id. Tokens are taken at
 * grant time, so the granted waiters' tokens are checked to increase in queue order.
 */
import test from 'ava';
import { waiterId } from '../../src/protocol/keys.js';
import { useRedis } from '../helpers/fixture.js';
import { holdersAt } from '../helpers/state.js';
import { sleep, LIVENESS, expectKind, kit } from './kit.js';

const fx = useRedis();
const { setup, heldIds, queued, elements, subscribe } = kit(fx);

/** Messages on `channel` (a subscriber duplicated from the fixture's client, closed with the test). */
test('a queued waiter leaves the queue (cancelled); the holder and the others are untouched', async (t) => {
  const { s, keys } = setup();
  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  const idA = waiterId('a', 1, 5_000, true, 1, 'x');
  const idB = waiterId('b', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'lock', 1), 'queued');
  expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'lock', 1), 'queued');
  const r = await s.cancel(keys, idA); // since unknown: found by the id
  t.is(r.kind, 'cancelled');
  t.true(r.now > 0);
  t.deepEqual(await queued(keys.queue), [idB]);
  t.deepEqual(await heldIds(keys.state), [idH]);
  t.is(expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'lock', 1, {}), 'queued').position, 1, 'b moved up');
  t.is((await s.cancel(keys, idA)).kind, 'not-found', 'a repeat finds nothing (a waiter that left is not a releaser)');
});

test('a head that did not fit leaving lets the ones behind it in', async (t) => {
  const { prefix, s, keys } = setup();
  const idX = waiterId('x', 1, 5_000, true, 1, 'x');
  const idA = waiterId('a', 1, 5_000, true, 3, 'x');
  const idB = waiterId('b', 1, 5_000, true, 1, 'x');
  const idC = waiterId('c', 1, 5_000, true, 1, 'x');
  const idD = waiterId('d', 1, 5_000, true, 1, 'x');
  const wake = await subscribe(t, `${prefix}:wake:c`);
  expectKind(await s.acquire(keys, idX, LIVENESS, 'wait', 'semaphore', 3), 'granted');
  const a = expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  expectKind(await s.acquire(keys, idC, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  expectKind(await s.acquire(keys, idD, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  t.deepEqual(await heldIds(keys.state), [idX], 'A (3 permits) does not fit beside X and holds B, C, D back');
  const r = await s.cancel(keys, idA, a.since);
  t.is(r.kind, 'cancelled');
  const held = await holdersAt(fx.client, keys.state);
  t.deepEqual(
    held.map((h) => [h.id, h.confirmed]),
    [
      [idX, true],
      [idB, false],
      [idC, false],
    ],
    'B and C fit (1 + 1 + 1 = 3) and are granted by the cancel',
  );
  t.true(held[0]!.token < held[1]!.token && held[1]!.token < held[2]!.token, 'tokens taken at grant, in queue order');
  t.deepEqual(await queued(keys.queue), [idD], 'D does not fit');
  const messages = await wake.received(1);
  t.is(messages[0]?.split(' ')[0], idC, 'the grant is woken as any hand-off is');
});

test('a waiter granted before its cancel got through is released on the spot, and the next one granted', async (t) => {
  const { s, keys } = setup();
  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  const idW = waiterId('w', 1, 5_000, true, 1, 'x');
  const idV = waiterId('v', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  const w = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'queued');
  expectKind(await s.acquire(keys, idV, LIVENESS, 'wait', 'lock', 1), 'queued');
  await s.release(keys, idH); // the grant races ahead: w holds, unconfirmed
  t.deepEqual(await heldIds(keys.state), [idW]);
  const wToken = (await holdersAt(fx.client, keys.state))[0]!.token;
  t.is((await s.cancel(keys, idW, w.since)).kind, 'released');
  const held = await holdersAt(fx.client, keys.state);
  t.deepEqual(
    held.map((h) => h.id),
    [idV],
    'v granted',
  );
  t.true(held[0]!.token > wToken);
  t.is((await fx.client.hGet(keys.state, 'r'))?.split(' ')[0], idW, 'remembered as the newest releaser');
  t.is((await s.cancel(keys, idW)).kind, 'already', 'a repeat answers already');
  t.is((await s.release(keys, idW)).kind, 'already', 'so does a release');
  t.deepEqual(await heldIds(keys.state), [idV], 'the repeats freed nothing');
});

test('an id never queued (or reaped) answers not-found and changes nothing', async (t) => {
  const { s, keys } = setup();
  t.is((await s.cancel(keys, waiterId('n', 1, 5_000, true, 1, 'x'))).kind, 'not-found');
  t.is(await fx.client.exists([keys.state, keys.queue]), 0, 'nothing written on an unused name');
  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  const before = await fx.client.hGetAll(keys.state);
  t.is((await s.cancel(keys, waiterId('n', 1, 5_000, true, 1, 'x'))).kind, 'not-found');
  t.deepEqual(await fx.client.hGetAll(keys.state), before);

  // Reaped: a dead waiter dropped at the head by a release is not found either.
  const idD = waiterId('d', 1, 5_000, true, 1, 'x');
  const idW = waiterId('w', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idD, 100, 'wait', 'lock', 1), 'queued');
  expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'queued'); // also keeps the queue key alive
  await sleep(300); // d's 100 ms liveness runs out
  t.is((await s.release(keys, idH)).kind, 'released');
  t.deepEqual(await heldIds(keys.state), [idW]);
  t.is(await fx.client.exists(keys.queue), 0, 'd reaped at the head');
  t.is((await s.cancel(keys, idD)).kind, 'not-found');
});

test('a cancel that knows its since removes that element; one that does not (or names another since) still leaves the queue', async (t) => {
  const { s, keys } = setup();
  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  const idA = waiterId('a', 1, 5_000, true, 1, 'x');
  const idA2 = waiterId('a', 12, 5_000, true, 1, 'x'); // an id that begins with a's id: not a's element
  const idB = waiterId('b', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  const a = expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'lock', 1), 'queued');
  const a2 = expectKind(await s.acquire(keys, idA2, LIVENESS, 'wait', 'lock', 1), 'queued');
  const b = expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'lock', 1), 'queued');

  t.is((await s.cancel(keys, idB, b.since)).kind, 'cancelled', 'since known: LREM of "id since"');
  t.deepEqual(await elements(keys.queue), [`${idA} ${a.since}`, `${idA2} ${a2.since}`]);
  t.is((await s.cancel(keys, idA2)).kind, 'cancelled', 'since unknown: found by the id');
  t.deepEqual(await elements(keys.queue), [`${idA} ${a.since}`], 'the other element is untouched');
  t.is((await s.cancel(keys, idA, a.since + 12_345)).kind, 'cancelled', 'a since that matches no element: found by the id');
  t.is(await fx.client.exists(keys.queue), 0);
  t.deepEqual(await heldIds(keys.state), [idH]);
  t.is((await s.cancel(keys, idA, a.since)).kind, 'not-found', 'a repeat finds nothing');
});
