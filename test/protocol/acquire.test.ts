/**
 * The engine's acquire, driven directly (the header of src/protocol/lua/engine.lua is the spec): a
 * free name is granted at once, a busy one queues the request (or, in try mode, reports busy without
 * queueing), a holder is told its same grant, a re-run ("again") finds the waiter's element instead
 * of pushing a second one, a busy name keeps its kind and limit, and the grant rule (strict FIFO,
 * stop at the first live waiter that does not fit, and put it back at the head) decides who is granted.
 *
 * Against the engine of one file (a queue LIST of "id since" elements, holders in the state's `h`
 * field, sessions in its `s` field): tickets at enqueue are gone, so "a queued waiter gets a ticket
 * above the last one" became "tokens are taken at grant time and strictly increase in grant order",
 * and "the sessions key holds the deadline" became "the state's `s` field does, written only when
 * less than half the liveness is left". An enqueue writes no token (`t` moves only at a grant).
 */
import test from 'ava';
import { FairLockError } from '../../src/errors.js';
import { waiterId } from '../../src/protocol/keys.js';
import { useRedis } from '../helpers/fixture.js';
import { holdersAt } from '../helpers/state.js';
import { sleep, LIVENESS, expectKind, kit, numbersOut } from './kit.js';

const fx = useRedis();
const { setup, heldIds, queued, elements, deadline, shapeOf } = kit(fx);
const DAY = 86_400_000;

test('a free name is granted at once: token = Redis time in µs, exp = now + lease, h = "id token exp lease granted 1"', async (t) => {
  const { s, keys } = setup();
  const id = waiterId('a', 1, 5_000, true, 1, 'x');
  const r = expectKind(await s.acquire(keys, id, LIVENESS, 'wait', 'lock', 1), 'granted');
  t.is(r.exp, r.now + 5_000);
  t.true(r.token >= r.now * 1_000, 'the token is Redis time in microseconds');
  t.deepEqual(await fx.client.hGetAll(keys.state), {
    k: 'lock 1',
    t: String(r.token),
    h: `${id} ${r.token} ${r.exp} 5000 ${r.now} 1`,
    x: String(r.now + DAY),
  }, 'an immediate grant writes no session: its first beat does');
  const pttl = await fx.client.pTTL(keys.state);
  t.true(pttl > DAY - 60_000 && pttl <= DAY, `the state keeps a day's TTL (${pttl} ms)`);
  t.is(await fx.client.exists(keys.queue), 0, 'nobody queued');
});

test('a busy name queues the request: position in line, the element "id since"; lapsed for a session Redis had no live deadline for', async (t) => {
  const { s, keys } = setup();
  const a = expectKind(await s.acquire(keys, waiterId('a', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'granted');
  const idB = waiterId('b', 1, 5_000, true, 1, 'x');
  const b = expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.is(b.since, b.now, 'since: the Redis time it entered the queue');
  t.is(b.position, 1);
  t.true(b.lapsed, 'the session had no deadline in Redis before this call');
  t.is(await deadline(keys.state, 'b'), b.now + LIVENESS, 'the session deadline is written when it queues');
  const idB2 = waiterId('b', 2, 5_000, true, 1, 'x');
  const b2 = expectKind(await s.acquire(keys, idB2, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.true(b2.since >= b.since);
  t.is(b2.position, 2);
  t.false(b2.lapsed, 'the session was live');
  t.is(await deadline(keys.state, 'b'), b.now + LIVENESS, 'more than half the liveness was left: the deadline is not rewritten');
  t.deepEqual(await elements(keys.queue), [`${idB} ${b.since}`, `${idB2} ${b2.since}`]);
  t.is(await fx.client.hGet(keys.state, 't'), String(a.token), 'an enqueue takes no token: t is the last token granted');
  const qttl = await fx.client.pTTL(keys.queue);
  t.true(qttl > DAY - 60_000 && qttl <= DAY, `the new queue list takes the state's expiry (${qttl} ms)`);

  // A session whose deadline passed is reported lapsed when it queues again.
  const idD = waiterId('d', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idD, 100, 'wait', 'lock', 1), 'queued');
  await sleep(300);
  const d2 = expectKind(await s.acquire(keys, waiterId('d', 2, 5_000, true, 1, 'x'), 100, 'wait', 'lock', 1), 'queued');
  t.true(d2.lapsed, 'liveness ran out before this call');
  t.is(await deadline(keys.state, 'd'), d2.now + 100, 'less than half the liveness left: rewritten');
});

test('acquire is idempotent: a re-run ("again") of a queued waiter is told its same since and position, a holder its same grant', async (t) => {
  const { s, keys } = setup();
  const idA = waiterId('a', 1, 5_000, true, 1, 'x');
  const a = expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'lock', 1), 'granted');
  const idB = waiterId('b', 1, 5_000, true, 1, 'x');
  const idC = waiterId('c', 1, 5_000, true, 1, 'x');
  const b = expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'lock', 1), 'queued');
  await sleep(5); // c's since differs from b's
  const c = expectKind(await s.acquire(keys, idC, LIVENESS, 'wait', 'lock', 1), 'queued');
  const stateBefore = await fx.client.hGetAll(keys.state);
  const queueBefore = await elements(keys.queue);

  const b1 = expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'lock', 1, { since: b.since }), 'queued');
  t.is(b1.since, b.since);
  t.is(b1.position, 1);
  t.false(b1.lapsed);
  const c1 = expectKind(await s.acquire(keys, idC, LIVENESS, 'wait', 'lock', 1, {}), 'queued');
  t.is(c1.since, c.since, 'since unknown to the client (its enqueue reply was lost): found by the id, and told');
  t.is(c1.position, 2);
  const a1 = expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'lock', 1), 'granted');
  t.is(a1.token, a.token);
  t.is(a1.exp, a.exp, 'a confirmed grant is only reported, not renewed');
  t.is(expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'lock', 1, {}), 'granted').token, a.token, 'in "again" mode too');
  // try mode reports the holder's grant; for a queued waiter it answers busy and queues nothing more
  t.is(expectKind(await s.acquire(keys, idA, LIVENESS, 'try', 'lock', 1), 'granted').token, a.token);
  expectKind(await s.acquire(keys, idB, LIVENESS, 'try', 'lock', 1), 'busy');

  t.deepEqual(await fx.client.hGetAll(keys.state), stateBefore, 'no token taken, no change');
  t.deepEqual(await elements(keys.queue), queueBefore, 'no second element');
});

test('"again" pushes no second element; a waiter Redis lost is queued again at the tail, with a new since', async (t) => {
  const { s, keys } = setup();
  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  const idW = waiterId('w', 1, 5_000, true, 1, 'x');
  const idV = waiterId('v', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  const w = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'queued');
  const v = expectKind(await s.acquire(keys, idV, LIVENESS, 'wait', 'lock', 1), 'queued');
  for (let i = 0; i < 3; i++) {
    const again = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1, i === 0 ? {} : { since: w.since }), 'queued');
    t.deepEqual([again.since, again.position], [w.since, 1]);
  }
  t.is(await fx.client.lLen(keys.queue), 2, 'still one element each');

  // Redis lost w's element (a failover, a restart): the re-run queues it again, behind v.
  t.is(await fx.client.lRem(keys.queue, 1, `${idW} ${w.since}`), 1);
  await sleep(5);
  const back = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1, { since: w.since }), 'queued');
  t.is(back.position, 2);
  t.true(back.since > w.since);
  t.deepEqual(await elements(keys.queue), [`${idV} ${v.since}`, `${idW} ${back.since}`]);
  t.is(expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1, { since: back.since }), 'queued').position, 2);
  t.is(await fx.client.lLen(keys.queue), 2);
});

test('an enqueue that ran twice (two elements of one id): the holder is granted once, the duplicate dropped at the head', async (t) => {
  const { s, keys } = setup();
  const idX = waiterId('x', 1, 5_000, true, 2, 'x');
  const idW = waiterId('w', 1, 5_000, true, 1, 'x');
  const idV = waiterId('v', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idX, LIVENESS, 'wait', 'semaphore', 2), 'granted');
  const w = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'semaphore', 2), 'queued');
  // the same enqueue again without "again" (a retry that did not know its first run got through)
  expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'semaphore', 2), 'queued');
  const v = expectKind(await s.acquire(keys, idV, LIVENESS, 'wait', 'semaphore', 2), 'queued');
  t.deepEqual(await queued(keys.queue), [idW, idW, idV]);

  t.is((await s.release(keys, idX)).kind, 'released');
  const held = await holdersAt(fx.client, keys.state);
  t.deepEqual(held.map((h) => h.id), [idW, idV], 'w holds once (one permit), so v fits in the second');
  t.true(held[0]!.token < held[1]!.token);
  t.is(await fx.client.exists(keys.queue), 0, 'the duplicate was dropped, not left queued');
  t.is(w.position, 1);
  t.is(v.position, 3);

  // A duplicate behind the holder's own grant on a full lock is dropped once it reaches the head,
  // after the grant was given up (the id is remembered as a releaser): never granted a second time.
  const l = setup();
  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  const idU = waiterId('u', 1, 5_000, true, 1, 'x');
  const idZ = waiterId('z', 1, 5_000, true, 1, 'x');
  expectKind(await l.s.acquire(l.keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await l.s.acquire(l.keys, idU, LIVENESS, 'wait', 'lock', 1), 'queued');
  expectKind(await l.s.acquire(l.keys, idU, LIVENESS, 'wait', 'lock', 1), 'queued');
  expectKind(await l.s.acquire(l.keys, idZ, LIVENESS, 'wait', 'lock', 1), 'queued');
  await l.s.release(l.keys, idH);
  t.deepEqual(await heldIds(l.keys.state), [idU]);
  t.deepEqual(await queued(l.keys.queue), [idU, idZ], 'the lock is full: the duplicate is not looked at yet');
  t.is((await l.s.release(l.keys, idU)).kind, 'released');
  t.deepEqual(await heldIds(l.keys.state), [idZ], 'the duplicate of a released holder is dropped; z is granted');
  t.is(await fx.client.exists(l.keys.queue), 0);
});

test('a head that does not fit is put back where it was: FIFO and its element are kept', async (t) => {
  const { s, keys } = setup();
  const idX = waiterId('x', 1, 5_000, true, 1, 'x');
  const idA = waiterId('a', 1, 5_000, true, 3, 'x');
  const idB = waiterId('b', 1, 5_000, true, 1, 'x');
  const idC = waiterId('c', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idX, LIVENESS, 'wait', 'semaphore', 3), 'granted');
  expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  await sleep(5);
  expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  const before = await elements(keys.queue);
  // c fits beside x (1 + 1 <= 3): the engine pops a, which does not fit, and pushes it back
  const c = expectKind(await s.acquire(keys, idC, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  t.is(c.position, 3, 'c does not pass a or b');
  t.deepEqual(await elements(keys.queue), [...before, `${idC} ${c.since}`], 'a is back at the head, unchanged');
  // A release that frees too little does the same.
  const idY = waiterId('y', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idY, LIVENESS, 'try', 'semaphore', 3), 'busy');
  t.deepEqual(await heldIds(keys.state), [idX]);
  t.deepEqual(await queued(keys.queue), [idA, idB, idC]);
  t.is((await s.release(keys, idX)).kind, 'released');
  t.deepEqual(await heldIds(keys.state), [idA], 'a first, alone (3 permits)');
  t.deepEqual(await queued(keys.queue), [idB, idC]);
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
  t.is(await deadline(keys.state, 'b'), null, 'no session deadline written');
  t.deepEqual(await fx.client.hGetAll(keys.state), stateBefore, 'no token taken');
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

  // A name with waiters but no holder (the holder ran out) is busy too: it refuses another kind.
  const q = setup();
  const idH = waiterId('h', 1, 100, false, 1, 'x');
  expectKind(await q.s.acquire(q.keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await q.s.acquire(q.keys, waiterId('w', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'queued');
  await fx.client.hSet(q.keys.state, 'h', ''); // the holder is gone, the waiter not yet granted
  t.is(expectKind(await q.s.acquire(q.keys, waiterId('s', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'semaphore', 2), 'refused').current, 'lock 1');
});

test('a weight above the limit is an error, and nothing is written', async (t) => {
  const { s, keys } = setup();
  await t.throwsAsync(s.acquire(keys, waiterId('a', 1, 5_000, true, 4, 'x'), LIVENESS, 'wait', 'semaphore', 3), {
    instanceOf: FairLockError,
    message: /weight 4 is more than the limit 3/,
  });
  t.is(await fx.client.exists([keys.state, keys.queue]), 0);
  // On a busy name too, in either mode.
  expectKind(await s.acquire(keys, waiterId('h', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'semaphore', 3), 'granted');
  const stateBefore = await fx.client.hGetAll(keys.state);
  for (const how of ['wait', 'try'] as const) {
    await t.throwsAsync(s.acquire(keys, waiterId('b', 1, 5_000, true, 4, 'x'), LIVENESS, how, 'semaphore', 3), {
      instanceOf: FairLockError,
      message: /weight 4 is more than the limit 3/,
    });
  }
  t.is(await fx.client.exists(keys.queue), 0);
  t.deepEqual(await fx.client.hGetAll(keys.state), stateBefore, 'no session deadline written either');
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
    'a b:1:5000:1:1:x', // a space would split the queue element
  ];
  for (const id of bad) {
    await t.throwsAsync(s.acquire(keys, id, LIVENESS, 'wait', 'lock', 1), { instanceOf: FairLockError, message: /malformed waiter id/ }, id);
  }
  await t.throwsAsync(s.acquire(keys, waiterId('a', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', Number.NaN), {
    instanceOf: FairLockError,
    message: /malformed waiter id, liveness or kind/,
  });
  t.is(await fx.client.exists([keys.state, keys.queue]), 0);
});

test('an unconfirmed hand-off grant is confirmed by acquire: exp = now + lease', async (t) => {
  const { s, keys } = setup();
  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  const idW = waiterId('w', 1, 300, false, 1, 'x');
  const h = expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'queued');
  const rel = await s.release(keys, idH);
  t.is(rel.kind, 'released');
  const sessionDeadline = await deadline(keys.state, 'w');
  const [entry] = await holdersAt(fx.client, keys.state);
  t.true(entry!.token > h.token, 'the token is taken at the grant, above the last one');
  t.true(entry!.token >= rel.now * 1_000);
  t.is(await fx.client.hGet(keys.state, 'h'), `${idW} ${entry!.token} ${sessionDeadline} 300 ${rel.now} 0`, 'hand-off: unconfirmed, until the session deadline');
  await sleep(50);
  const r = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'granted');
  t.is(r.token, entry!.token);
  t.is(r.exp, r.now + 300);
  t.true(r.now >= rel.now + 40);
  t.is(await fx.client.hGet(keys.state, 'h'), `${idW} ${r.token} ${r.now + 300} 300 ${r.now} 1`);
  const again = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1, {}), 'granted');
  t.is(again.exp, r.exp, 'confirmed once');
});

test('grant rule: permits 3, queue A(2) B(2) C(1): C does not pass B; when A leaves, B and C both hold, tokens in queue order', async (t) => {
  const { s, keys } = setup();
  const idX = waiterId('x', 1, 5_000, true, 3, 'x');
  const idA = waiterId('a', 1, 5_000, true, 2, 'x');
  const idB = waiterId('b', 1, 5_000, true, 2, 'x');
  const idC = waiterId('c', 1, 5_000, true, 1, 'x');
  const x = expectKind(await s.acquire(keys, idX, LIVENESS, 'wait', 'semaphore', 3), 'granted');
  const a = expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  const b = expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  const c = expectKind(await s.acquire(keys, idC, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  t.deepEqual([a.position, b.position, c.position], [1, 2, 3]);

  t.is((await s.release(keys, idX)).kind, 'released');
  t.deepEqual(await heldIds(keys.state), [idA], 'A fits; B does not, and C does not pass it');
  t.deepEqual(await queued(keys.queue), [idB, idC]);
  // C's own re-run does not let it pass B either
  t.is(expectKind(await s.acquire(keys, idC, LIVENESS, 'wait', 'semaphore', 3, { since: c.since }), 'queued').position, 2);
  const tokenA = (await holdersAt(fx.client, keys.state))[0]!.token;

  t.is((await s.release(keys, idA)).kind, 'released');
  const held = await holdersAt(fx.client, keys.state);
  t.deepEqual(held.map((h) => h.id), [idB, idC], 'B and C both hold (2 + 1 = 3), in queue order');
  t.true(x.token < tokenA && tokenA < held[0]!.token && held[0]!.token < held[1]!.token, 'tokens strictly increase in grant order');
  t.is(await fx.client.hGet(keys.state, 't'), String(held[1]!.token), 't is the last token handed out');
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
  t.deepEqual(await queued(keys.queue), [r3]);
  const q4 = expectKind(await s.acquire(keys, r4, LIVENESS, 'wait', 'rw', 0), 'queued');
  t.is(q4.position, 2);

  await s.release(keys, w);
  t.deepEqual(await heldIds(keys.state), [r3, r4], 'the reads behind it hold together');
  t.is(await fx.client.exists(keys.queue), 0);

  // A write is not granted while reads hold, in try mode either.
  const w2 = waiterId('w', 2, 5_000, true, 1, 'w');
  expectKind(await s.acquire(keys, w2, LIVENESS, 'try', 'rw', 0), 'busy');
});

test('a queue list put back by LPUSH (its only element did not fit) keeps the keys\' expiry: it never lives on without one', async (t) => {
  const { s, keys } = setup();
  const idX = waiterId('x', 1, 5_000, true, 1, 'x');
  const idA = waiterId('a', 1, 5_000, true, 3, 'x');
  const idC = waiterId('c', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idX, LIVENESS, 'wait', 'semaphore', 3), 'granted');
  expectKind(await s.acquire(keys, idA, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  const x = Number(await fx.client.hGet(keys.state, 'x'));
  t.true((await fx.client.pTTL(keys.queue)) > 0);
  // c fits beside x: the engine pops a (the list is deleted, empty), a does not fit, LPUSH makes a new list
  expectKind(await s.acquire(keys, idC, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  t.deepEqual(await queued(keys.queue), [idA, idC]);
  const pttl = await fx.client.pTTL(keys.queue);
  t.true(pttl > 0, `the queue list has an expiry (PTTL ${pttl})`);
  t.true(pttl <= x - (await fx.client.time()).getTime() + 1_000, 'the keys\' expiry x');
  // The same through a release that frees too little.
  await fx.client.del(keys.queue);
  expectKind(await s.acquire(keys, waiterId('y', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'semaphore', 3), 'granted');
  const idB = waiterId('b', 1, 5_000, true, 3, 'x');
  expectKind(await s.acquire(keys, idB, LIVENESS, 'wait', 'semaphore', 3), 'queued');
  t.is((await s.release(keys, idX)).kind, 'released'); // b is popped, does not fit beside y, and is put back
  t.deepEqual(await queued(keys.queue), [idB]);
  t.true((await fx.client.pTTL(keys.queue)) > 0, 'after a release too');
});

test('"again" with a since that matches no element (a re-run whose reply was lost) finds the element by the id: no second element', async (t) => {
  const { s, keys } = setup();
  const idH = waiterId('h', 1, 5_000, true, 1, 'x');
  const idW = waiterId('w', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  const w = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'queued');
  // The client knows an older since (its element was lost and pushed again by a re-run whose reply it never got).
  const r = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1, { since: w.since - 1_000 }), 'queued');
  t.deepEqual([r.since, r.position], [w.since, 1], 'told the element it has');
  t.deepEqual(await elements(keys.queue), [`${idW} ${w.since}`]);
  // The heartbeat's newest check finds it the same way: no false lapse.
  t.false((await s.heartbeat(keys, 'w', LIVENESS, { held: [], newest: { id: idW, since: w.since - 1_000 } })).lapsed);
});

// The engine's fast path (an idle name, plain mode, the default group: granted without building the
// name's state) must write exactly what the general path writes. "again" on an idle name takes the
// general path and grants the same way, so the two are compared field by field, numbers aside.
test('an uncontended grant writes what the general path writes: lock, semaphore, read, quorum floor and guard', async (t) => {
  const shapes = [
    { kind: 'lock', limit: 1, weight: 1, mode: 'x' },
    { kind: 'semaphore', limit: 3, weight: 2, mode: 'x' },
    { kind: 'rw', limit: 0, weight: 1, mode: 'r' },
    { kind: 'rw', limit: 0, weight: 1, mode: 'w' },
  ] as const;
  for (const [k, shape] of shapes.entries()) {
    for (const quorum of [undefined, { floor: Date.now() * 1_000 + 5_000_000, guardMs: 3_000 }]) {
      const runs: Record<string, string>[] = [];
      for (const again of [undefined, {}]) {
        const { s, keys, prefix } = setup();
        if (quorum) await fx.client.hSet(`${prefix}:born`, 'b', '0'); // born long ago: the guard has passed
        const id = waiterId(`s${k}`, 1, 5_000, true, shape.weight, shape.mode);
        const r = expectKind(await s.acquire(keys, id, LIVENESS, 'wait', shape.kind, shape.limit, again, {}, quorum), 'granted');
        if (quorum) t.is(r.token, quorum.floor, 'the floor bounds the token');
        t.true((await fx.client.pTTL(keys.state)) > DAY - 60_000, 'the state has its expiry');
        runs.push(await shapeOf(keys.state));
        t.is((await s.release(keys, id)).kind, 'released');
        const after = await fx.client.hGetAll(keys.state);
        t.deepEqual([after.h, after.r], ['', id], `${shape.kind} ${shape.mode}: released`);
      }
      t.deepEqual(runs[0], runs[1], `${shape.kind} ${shape.mode}${quorum ? ' (quorum)' : ''}: the fast path's fields are the general path's`);
    }
  }
});

test('an idle name of limit 0 grants nothing, whichever path the engine takes (no client sends one)', async (t) => {
  const { s, keys } = setup();
  const id = waiterId('z', 1, 5_000, true, 0, 'x');
  const r = await s.acquire(keys, id, LIVENESS, 'wait', 'semaphore', 0);
  t.is(r.kind, 'queued');
  t.is((await fx.client.hGetAll(keys.state)).h ?? '', '', 'nobody holds');
});

test('an enqueue behind a holder writes what the general path writes: lock, semaphore, rw, a new or a longer queue, quorum floor', async (t) => {
  const shapes = [
    { kind: 'lock', limit: 1, held: [1, 'x'], asks: [1, 'x'] },
    { kind: 'semaphore', limit: 3, held: [2, 'x'], asks: [2, 'x'] },
    { kind: 'rw', limit: 0, held: [1, 'r'], asks: [1, 'w'] },
    { kind: 'rw', limit: 0, held: [1, 'w'], asks: [1, 'r'] },
  ] as const;
  for (const [k, shape] of shapes.entries()) {
    for (const quorum of [undefined, { floor: Date.now() * 1_000 + 5_000_000, guardMs: 3_000 }]) {
      for (const longer of [false, true]) {
        const label = `${shape.kind} ${shape.asks[1]}${quorum ? ' (quorum)' : ''}${longer ? ', second in the queue' : ', a new queue'}`;
        const runs: unknown[] = [];
        for (const again of [undefined, {}]) {
          const { s, keys, prefix } = setup();
          if (quorum) await fx.client.hSet(`${prefix}:born`, 'b', '0'); // born long ago: the guard has passed
          const holder = waiterId(`h${k}`, 1, 5_000, true, shape.held[0], shape.held[1]);
          expectKind(await s.acquire(keys, holder, LIVENESS, 'wait', shape.kind, shape.limit, undefined, {}, quorum), 'granted');
          // the session's deadline is set by its first waiter (the general path), which stays queued or leaves
          const first = waiterId(`q${k}`, 1, 5_000, true, shape.asks[0], shape.asks[1]);
          const q = expectKind(await s.acquire(keys, first, LIVENESS, 'wait', shape.kind, shape.limit, undefined, {}, quorum), 'queued');
          if (!longer) t.is((await s.cancel(keys, first, q.since, undefined, quorum?.floor)).kind, 'cancelled');
          const before = await fx.client.hGetAll(keys.state);
          const id = waiterId(`q${k}`, 2, 5_000, true, shape.asks[0], shape.asks[1]);
          const r = expectKind(await s.acquire(keys, id, LIVENESS, 'wait', shape.kind, shape.limit, again, {}, quorum), 'queued');
          t.is(r.position, longer ? 2 : 1, label);
          t.false(r.lapsed);
          t.is(r.sessionDeadline, q.sessionDeadline, `${label}: the session's deadline, unmoved`);
          t.deepEqual(await fx.client.hGetAll(keys.state), before, `${label}: the state as it was (the expiry was far off)`);
          const tail = await fx.client.lIndex(keys.queue, -1);
          t.is(tail, `${id} ${r.since}${quorum ? ` ${quorum.floor}` : ''}`, `${label}: the element`);
          const ttl = await fx.client.pTTL(keys.queue);
          t.true(ttl > 0 && Math.abs(r.now + ttl - Number(before.x)) < 5_000, `${label}: the queue expires with the state`);
          runs.push({ state: await shapeOf(keys.state), queue: (await elements(keys.queue)).map(numbersOut), reply: [r.position, r.lapsed] });
        }
        t.deepEqual(runs[0], runs[1], `${label}: the fast path's writes are the general path's`);
      }
    }
  }
});

test('an enqueue that makes the queue when the keys expire soon moves the expiry as the general path does', async (t) => {
  const runs: unknown[] = [];
  for (const again of [undefined, {}]) {
    const { s, keys } = setup();
    expectKind(await s.acquire(keys, waiterId('h', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'granted');
    const first = waiterId('q', 1, 5_000, true, 1, 'x');
    const q = expectKind(await s.acquire(keys, first, LIVENESS, 'wait', 'lock', 1), 'queued');
    t.is((await s.cancel(keys, first, q.since)).kind, 'cancelled');
    const soon = q.now + 60_000; // less than half a day: the next write that makes a key moves it
    await fx.client.hSet(keys.state, 'x', String(soon));
    await fx.client.pExpireAt(keys.state, soon);
    const r = expectKind(await s.acquire(keys, waiterId('q', 2, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1, again), 'queued');
    const x = Number(await fx.client.hGet(keys.state, 'x'));
    t.true(x >= r.now + DAY, 'x moved a day on');
    for (const key of [keys.state, keys.queue]) t.true(Math.abs(r.now + (await fx.client.pTTL(key)) - x) < 5_000, `${key} expires at x`);
    runs.push(await shapeOf(keys.state));
  }
  t.deepEqual(runs[0], runs[1]);
});
