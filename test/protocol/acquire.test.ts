/**
 * acquire.lua, driven directly (src/protocol/lua/acquire.lua states the contract): a free name is
 * granted at once, a busy one queues the request (or, in try mode, reports busy without queueing),
 * the call is idempotent per waiter id, a busy name keeps its kind and limit, and the grant rule of
 * common.lua (strict FIFO, stop at the first live waiter that does not fit) decides who is granted.
 */
import test from 'ava';
import { FairLockError } from '../../src/errors.js';
import { waiterId } from '../../src/protocol/keys.js';
import { useRedis } from '../helpers/fixture.js';
import { holdersAt } from '../helpers/state.js';
import { sleep, LIVENESS, expectKind, kit } from './kit.js';

const fx = useRedis();
const { setup, heldIds } = kit(fx);

async function queueOf(key: string): Promise<{ value: string; score: number }[]> {
  return fx.client.zRangeWithScores(key, 0, -1);
}

test('a free name is granted at once: token = the ticket, exp = now + lease, entry "token exp lease g 1"', async (t) => {
  const { s, keys } = setup();
  const id = waiterId('a', 1, 5_000, true, 1, 'x');
  const r = expectKind(await s.acquire(keys, id, LIVENESS, 'wait', 'lock', 1), 'granted');
  t.is(r.exp, r.now + 5_000);
  t.true(r.token >= r.now * 1_000, 'the ticket is Redis time in microseconds');
  t.deepEqual(await fx.client.hGetAll(keys.state), {
    t: String(r.token),
    k: 'lock 1',
    [id]: `${r.token} ${r.exp} 5000 ${r.now} 1`,
  });
  const pttl = await fx.client.pTTL(keys.state);
  t.true(pttl > 86_400_000 - 60_000 && pttl <= 86_400_000, `the state keeps a day's TTL (${pttl} ms)`);
  t.is(await fx.client.exists(keys.queue), 0, 'nobody queued');
});

test('a busy name queues the request: position in line, a ticket above the last one; lapsed for a session Redis had no live deadline for', async (t) => {
  const { s, keys } = setup();
  const a = expectKind(await s.acquire(keys, waiterId('a', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'granted');
  const idB = waiterId('b', 1, 5_000, true, 1, 'x');
  const b = expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.true(b.ticket > a.token);
  t.is(b.position, 1);
  t.true(b.lapsed, 'the session had no deadline in Redis before this call');
  t.is(await fx.client.zScore(keys.sessions, 'b'), b.now + LIVENESS, 'the session deadline is refreshed when it queues');
  const idB2 = waiterId('b', 2, 5_000, true, 1, 'x');
  const b2 = expectKind(await s.acquire(keys, idB2, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.true(b2.ticket > b.ticket);
  t.is(b2.position, 2);
  t.false(b2.lapsed, 'the session was live');
  t.deepEqual(await queueOf(keys.queue), [
    { value: idB, score: b.ticket },
    { value: idB2, score: b2.ticket },
  ]);
  t.is(await fx.client.hGet(keys.state, 't'), String(b2.ticket), 't is the last ticket handed out');

  // A session whose deadline passed is reported lapsed when it queues again.
  const idD = waiterId('d', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idD, 100, 'wait', 'lock', 1), 'queued');
  await sleep(300);
  const d2 = expectKind(await s.acquire(keys, waiterId('d', 2, 5_000, true, 1, 'x'), 100, 'wait', 'lock', 1), 'queued');
  t.true(d2.lapsed, 'liveness ran out before this call');
});

test('acquire is idempotent: a queued waiter is told its same ticket and position, a holder its same grant', async (t) => {
  const { s, keys } = setup();
  const idA = waiterId('a', 1, 5_000, true, 1, 'x');
  const a = expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'lock', 1), 'granted');
  const idB = waiterId('b', 1, 5_000, true, 1, 'x');
  const idC = waiterId('c', 1, 5_000, true, 1, 'x');
  const b = expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'lock', 1), 'queued');
  const c = expectKind(await s.acquire(keys, idC, LIVENESS, 'wait', 'lock', 1), 'queued');
  const stateBefore = await fx.client.hGetAll(keys.state);
  const queueBefore = await queueOf(keys.queue);

  const b1 = expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.is(b1.ticket, b.ticket);
  t.is(b1.position, 1);
  t.false(b1.lapsed);
  const c1 = expectKind(await s.acquire(keys, idC, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.is(c1.ticket, c.ticket);
  t.is(c1.position, 2);
  const a1 = expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'lock', 1), 'granted');
  t.is(a1.token, a.token);
  t.is(a1.exp, a.exp, 'a confirmed grant is only reported, not renewed');
  // try mode reports the same for a waiter that is already queued or holding
  t.is(expectKind(await s.acquire(keys, idB, LIVENESS, 'try', 'lock', 1), 'queued').ticket, b.ticket);
  t.is(expectKind(await s.acquire(keys, idA, LIVENESS, 'try', 'lock', 1), 'granted').token, a.token);

  t.deepEqual(await fx.client.hGetAll(keys.state), stateBefore, 'no new ticket, no change');
  t.deepEqual(await queueOf(keys.queue), queueBefore);
});

test('try mode: a free name is granted, a busy one answers busy with heldLeftMs and nothing queued', async (t) => {
  const { s, keys } = setup();
  const a = expectKind(await s.acquire(keys, waiterId('a', 1, 5_000, true, 1, 'x'), LIVENESS, 'try', 'lock', 1), 'granted');
  t.is(a.exp, a.now + 5_000);
  const stateBefore = await fx.client.hGetAll(keys.state);
  const r = expectKind(await s.acquire(keys, waiterId('b', 1, 5_000, true, 1, 'x'), LIVENESS, 'try', 'lock', 1), 'busy');
  t.is(r.heldLeftMs, a.exp - r.now, 'the holder deadline from now');
  t.true(r.heldLeftMs > 0 && r.heldLeftMs <= 5_000);
  t.is(await fx.client.exists(keys.queue), 0, 'not queued');
  t.is(await fx.client.zScore(keys.sessions, 'b'), null, 'no session deadline written');
  t.deepEqual(await fx.client.hGetAll(keys.state), stateBefore, 'no ticket handed out');
});

test('try mode reports the soonest holder deadline of several', async (t) => {
  const { s, keys } = setup();
  const long = expectKind(await s.acquire(keys, waiterId('a', 1, 8_000, true, 1, 'x'), LIVENESS, 'wait', 'semaphore', 2), 'granted');
  const short = expectKind(await s.acquire(keys, waiterId('b', 1, 3_000, true, 1, 'x'), LIVENESS, 'wait', 'semaphore', 2), 'granted');
  const r = expectKind(await s.acquire(keys, waiterId('c', 1, 5_000, true, 1, 'x'), LIVENESS, 'try', 'semaphore', 2), 'busy');
  t.is(r.heldLeftMs, Math.min(long.exp, short.exp) - r.now);
});

test('kind and limit: an idle name takes "semaphore 3"; while busy it refuses "semaphore 2", "lock 1" and "rw 0", naming "semaphore 3"', async (t) => {
  const { s, keys } = setup();
  const idA = waiterId('a', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'semaphore', 3), 'granted');
  t.is(await fx.client.hGet(keys.state, 'k'), 'semaphore 3');
  for (const [kind, limit, mode] of [
    ['semaphore', 2, 'x'],
    ['lock', 1, 'x'],
    ['rw', 0, 'r'],
  ] as const) {
    for (const how of ['wait', 'try'] as const) {
      const r = expectKind(await s.acquire(keys, waiterId('b', 1, 5_000, true, 1, mode), LIVENESS, how, kind, limit), 'refused');
      t.is(r.current, 'semaphore 3', `${kind} ${limit} (${how})`);
    }
  }
  t.is(await fx.client.exists(keys.queue), 0, 'a refused request is not queued');
  t.is(await fx.client.hGet(keys.state, 'k'), 'semaphore 3');
  expectKind(await s.acquire(keys, waiterId('c', 1, 5_000, true, 2, 'x'), LIVENESS, 'wait', 'semaphore', 3), 'granted');

  // Idle again: the name takes whatever kind comes next.
  await s.release(keys, idA);
  await s.release(keys, waiterId('c', 1, 5_000, true, 2, 'x'));
  expectKind(await s.acquire(keys, waiterId('d', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'granted');
  t.is(await fx.client.hGet(keys.state, 'k'), 'lock 1');
});

test('a weight above the limit is an error, and nothing is written', async (t) => {
  const { s, keys } = setup();
  await t.throwsAsync(s.acquire(keys, waiterId('a', 1, 5_000, true, 4, 'x'), LIVENESS, 'wait', 'semaphore', 3), {
    instanceOf: FairLockError,
    message: /weight 4 is more than the limit 3/,
  });
  t.is(await fx.client.exists([keys.state, keys.queue, keys.sessions]), 0);
  // On a busy name too, in either mode.
  expectKind(await s.acquire(keys, waiterId('h', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'semaphore', 3), 'granted');
  for (const how of ['wait', 'try'] as const) {
    await t.throwsAsync(s.acquire(keys, waiterId('b', 1, 5_000, true, 4, 'x'), LIVENESS, how, 'semaphore', 3), {
      instanceOf: FairLockError,
      message: /weight 4 is more than the limit 3/,
    });
  }
  t.is(await fx.client.exists(keys.queue), 0);
  // weight = limit is fine: it queues behind the holder
  expectKind(await s.acquire(keys, waiterId('c', 1, 5_000, true, 3, 'x'), LIVENESS, 'wait', 'semaphore', 3), 'queued');
});

test('a malformed waiter id or kind is an error, and nothing is written', async (t) => {
  const { s, keys } = setup();
  const bad = [
    'nope',
    'a:1:5000:1:1', // no mode
    'a:1:5000:2:1:x', // renew not 0/1
    'a:1:5000:1:1:q', // unknown mode
    'a:1:5e3:1:1:x', // lease not digits
    ':1:5000:1:1:x', // no session
    'a:b:1:5000:1:1:x', // one field too many
  ];
  for (const id of bad) {
    await t.throwsAsync(s.acquire(keys, id, LIVENESS, 'wait', 'lock', 1), { instanceOf: FairLockError, message: /malformed waiter id/ }, id);
  }
  await t.throwsAsync(s.acquire(keys, waiterId('a', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', Number.NaN), {
    instanceOf: FairLockError,
    message: /malformed waiter id or kind/,
  });
  t.is(await fx.client.exists([keys.state, keys.queue, keys.sessions]), 0);
});

test('an unconfirmed hand-off grant is confirmed by acquire: exp = now + lease', async (t) => {
  const { s, keys } = setup();
  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  const idW = waiterId('w', 1, 300, false, 1, 'x');
  expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  const w = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'queued');
  const rel = await s.release(keys, idH);
  t.is(rel.kind, 'released');
  const deadline = await fx.client.zScore(keys.sessions, 'w');
  t.is(await fx.client.hGet(keys.state, idW), `${w.ticket} ${deadline} 300 ${rel.now} 0`, 'hand-off: unconfirmed, until the session deadline');
  await sleep(50);
  const r = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'granted');
  t.is(r.token, w.ticket);
  t.is(r.exp, r.now + 300);
  t.true(r.now >= rel.now + 40);
  t.is(await fx.client.hGet(keys.state, idW), `${w.ticket} ${r.now + 300} 300 ${r.now} 1`);
  const again = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'granted');
  t.is(again.exp, r.exp, 'confirmed once');
});

test('grant rule: permits 3, queue A(2) B(2) C(1): C does not pass B; when A leaves, B and C both hold, tokens in queue order', async (t) => {
  const { s, keys } = setup();
  const idX = waiterId('x', 1, 5_000, true, 3, 'x');
  const idA = waiterId('a', 1, 5_000, true, 2, 'x');
  const idB = waiterId('b', 1, 5_000, true, 2, 'x');
  const idC = waiterId('c', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idX, LIVENESS, 'wait', 'semaphore', 3), 'granted');
  const a = expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  const b = expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  const c = expectKind(await s.acquire(keys, idC, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  t.deepEqual([a.position, b.position, c.position], [1, 2, 3]);

  t.is((await s.release(keys, idX)).kind, 'released');
  t.deepEqual(await heldIds(keys.state), [idA], 'A fits; B does not, and C does not pass it');
  t.deepEqual((await queueOf(keys.queue)).map((e) => e.value), [idB, idC]);
  // C's own acquire does not let it pass B either
  t.is(expectKind(await s.acquire(keys, idC, LIVENESS, 'wait', 'semaphore', 3), 'queued').position, 2);

  t.is((await s.release(keys, idA)).kind, 'released');
  const held = await holdersAt(fx.client, keys.state);
  t.deepEqual(
    held.map((h) => [h.id, h.token]),
    [
      [idB, b.ticket],
      [idC, c.ticket],
    ],
    'B and C both hold (2 + 1 = 3), tokens = their tickets, in order',
  );
  t.true(b.ticket < c.ticket);
  t.is(await fx.client.exists(keys.queue), 0);
});

test('read-write: reads hold together, a write waits for them, reads behind a queued write wait', async (t) => {
  const { s, keys } = setup();
  const r1 = waiterId('r1', 1, 5_000, true, 1, 'r');
  const r2 = waiterId('r2', 1, 5_000, true, 1, 'r');
  const w = waiterId('w', 1, 5_000, true, 1, 'w');
  const r3 = waiterId('r3', 1, 5_000, true, 1, 'r');
  const r4 = waiterId('r4', 1, 5_000, true, 1, 'r');
  expectKind(await s.acquire(keys, r1, LIVENESS, 'wait', 'rw', 0), 'granted');
  expectKind(await s.acquire(keys, r2, LIVENESS, 'wait', 'rw', 0), 'granted');
  t.is(await fx.client.hGet(keys.state, 'k'), 'rw 0');
  t.deepEqual((await heldIds(keys.state)).sort(), [r1, r2].sort(), 'two reads together');
  const qw = expectKind(await s.acquire(keys, w, LIVENESS, 'wait', 'rw', 0), 'queued');
  t.is(qw.position, 1, 'the write waits for the reads');
  const q3 = expectKind(await s.acquire(keys, r3, LIVENESS, 'wait', 'rw', 0), 'queued');
  t.is(q3.position, 2, 'a read does not pass the queued write');
  expectKind(await s.acquire(keys, r4, LIVENESS, 'try', 'rw', 0), 'busy');

  await s.release(keys, r1);
  t.deepEqual(await heldIds(keys.state), [r2], 'the write still waits for the other read');
  await s.release(keys, r2);
  t.deepEqual(await heldIds(keys.state), [w], 'the write holds alone');
  t.deepEqual((await queueOf(keys.queue)).map((e) => e.value), [r3]);
  const q4 = expectKind(await s.acquire(keys, r4, LIVENESS, 'wait', 'rw', 0), 'queued');
  t.is(q4.position, 2);

  await s.release(keys, w);
  t.deepEqual(await heldIds(keys.state), [r3, r4], 'the reads behind it hold together');
  t.is(await fx.client.exists(keys.queue), 0);

  // A write is not granted while reads hold, in try mode either.
  const w2 = waiterId('w', 2, 5_000, true, 1, 'w');
  expectKind(await s.acquire(keys, w2, LIVENESS, 'try', 'rw', 0), 'busy');
});
