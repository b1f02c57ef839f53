/**
 * The engine's extend, driven directly (the header of src/protocol/lua/engine.lua is the spec): a
 * holder's lease is set to end ms from now and later renewals use ms as the lease; anyone else is not
 * a holder; the name's keys never expire before its longest holder's deadline, also past a day.
 *
 * Expiry of the keys: the engine keeps the expiry of both keys in the state's `x` field and moves it
 * (PEXPIREAT on both) only when less than half a day is left, or when a holder's deadline is later:
 * "the TTL is a day again after a short lease" of the old scripts (which wrote a TTL on every call)
 * became "the expiry is never moved back, never less than half a day away after a write, and is
 * rewritten only when short" (the last test).
 */
import test from 'ava';
import { waiterId } from '../../src/protocol/keys.js';
import { type ExtendReply } from '../../src/protocol/scripts.js';
import { useRedis } from '../helpers/fixture.js';
import { holdersAt, queueAt, redisNow, type HolderEntry } from '../helpers/state.js';
import { sleep, LIVENESS, expectKind, kit } from './kit.js';

const fx = useRedis();
const { setup } = kit(fx);
const DAY = 86_400_000;

function extended(r: ExtendReply): Extract<ExtendReply, { kind: 'extended' }> {
  if (r.kind !== 'extended') throw new Error(`expected extended, got ${JSON.stringify(r)}`);
  return r;
}

async function entry(stateKey: string, id: string): Promise<HolderEntry | undefined> {
  return (await holdersAt(fx.client, stateKey)).find((h) => h.id === id);
}

test('sets exp = now + ms and lease = ms; later renewals use ms', async (t) => {
  const { s, keys } = setup();
  const a = waiterId('a', 1, 10_000, true, 1, 'x');
  const g = expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'granted');
  await sleep(50);
  const r = extended(await s.extend(keys, a, 20_000));
  t.is(r.exp, r.now + 20_000);
  t.is(await fx.client.hGet(keys.state, 'h'), `${a} ${g.token} ${r.now + 20_000} 20000 ${r.now} 1`);
  // Shorter than before is allowed too: the lease ends ms from now.
  await sleep(50);
  const shorter = extended(await s.extend(keys, a, 3_000));
  t.is(shorter.exp, shorter.now + 3_000);
  t.is((await entry(keys.state, a))?.lease, 3_000);
  await sleep(50);
  const hb = await s.heartbeat(keys, 'a', LIVENESS, { held: [a] });
  t.deepEqual(hb.holders, [{ id: a, token: g.token, exp: hb.now + 3_000 }], 'the renewal uses the new lease');
});

test('not-holder for an id that does not hold: never seen, only queued, released, or run out', async (t) => {
  const { s, keys } = setup();
  const a = waiterId('a', 1, 100, false, 1, 'x');
  const w = waiterId('w', 1, 5_000, true, 1, 'x');
  t.is((await s.extend(keys, waiterId('z', 1, 5_000, true, 1, 'x'), 5_000)).kind, 'not-holder');
  expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, w, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.is((await s.extend(keys, w, 5_000)).kind, 'not-holder', 'a waiter is not a holder');
  t.deepEqual((await queueAt(fx.client, keys.queue)).map((e) => e.id), [w], 'and stays queued');
  await sleep(300); // a's 100 ms lease runs out
  t.is((await s.extend(keys, a, 5_000)).kind, 'not-holder', 'a lease that ran out cannot be extended');
  t.deepEqual(
    (await holdersAt(fx.client, keys.state)).map((h) => h.id),
    [w],
    'the expired holder was dropped and the waiter granted on',
  );
  await s.release(keys, w);
  t.is((await s.extend(keys, w, 5_000)).kind, 'not-holder', 'released');
});

test('extending an unconfirmed hand-off grant confirms it', async (t) => {
  const { s, keys } = setup();
  const h = waiterId('h', 1, 5_000, true, 1, 'x');
  const w = waiterId('w', 1, 1_000, false, 1, 'x');
  expectKind(await s.acquire(keys, h, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, w, LIVENESS, 'wait', 'lock', 1), 'queued');
  await s.release(keys, h);
  const before = await entry(keys.state, w);
  t.false(before?.confirmed);
  const r = extended(await s.extend(keys, w, 3_000));
  t.is(r.exp, r.now + 3_000);
  t.is(await fx.client.hGet(keys.state, 'h'), `${w} ${before?.token} ${r.now + 3_000} 3000 ${r.now} 1`);
});

test("a lease extended past 24 h keeps the state key's TTL at least to the holder's deadline", async (t) => {
  const { s, keys } = setup();
  const a = waiterId('a', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'granted');
  const before = await fx.client.pTTL(keys.state);
  t.true(before <= DAY && before > DAY - 60_000, `a day to begin with (${before} ms)`);
  const ms = DAY + 3_600_000; // 25 h
  const r = extended(await s.extend(keys, a, ms));
  t.is(r.exp, r.now + ms);
  const pttl = await fx.client.pTTL(keys.state);
  const after = await redisNow(fx.client);
  t.true(pttl > DAY, `more than a day (${pttl} ms)`);
  t.true(after + pttl >= r.exp - 2, `the key lives until the deadline: expires ${after + pttl}, deadline ${r.exp}`);

  // Other calls (an enqueue, a renewal) keep it too, on both keys.
  expectKind(await s.acquire(keys, waiterId('b', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'queued');
  t.true((await fx.client.pTTL(keys.state)) + (await redisNow(fx.client)) >= r.exp - 2, 'after an enqueue');
  t.true((await fx.client.pTTL(keys.queue)) + (await redisNow(fx.client)) >= r.exp - 2, 'the new queue list takes the same expiry');
  const hb = await s.heartbeat(keys, 'a', LIVENESS, { held: [a] });
  t.is(hb.holders[0]?.exp, hb.now + ms, 'renewed with the 25 h lease');
  t.true((await fx.client.pTTL(keys.state)) + (await redisNow(fx.client)) >= hb.now + ms - 2, 'after a renewal');
  await s.cancel(keys, waiterId('b', 1, 5_000, true, 1, 'x'));

  // Back to a short lease: the expiry is not moved back (it is written only when short).
  const x = await fx.client.hGet(keys.state, 'x');
  const short = extended(await s.extend(keys, a, 2_000));
  const pttl2 = await fx.client.pTTL(keys.state);
  t.is(await fx.client.hGet(keys.state, 'x'), x, 'x unchanged');
  t.true(pttl2 > DAY, `still past a day (${pttl2} ms)`);
  t.true(pttl2 > short.exp - short.now);
});

test('the keys\' expiry x is written only when less than half a day is left, then a day from now, on both keys', async (t) => {
  const { s, keys } = setup();
  const a = waiterId('a', 1, 5_000, true, 1, 'x');
  const g = expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'granted');
  t.is(await fx.client.hGet(keys.state, 'x'), String(g.now + DAY));
  /** Whether `key` expires at `at` (Redis ms): PTTL read between two Redis clocks, so exact up to that window. */
  const expiresAt = async (key: string, at: number) => {
    const before = await redisNow(fx.client);
    const pttl = await fx.client.pTTL(key);
    const after = await redisNow(fx.client);
    return at >= before + pttl - 1 && at <= after + pttl + 1;
  };

  // More than half a day left (set here directly): a writing call leaves x and the expiries alone.
  const plenty = g.now + DAY / 2 + 60_000;
  await fx.client.hSet(keys.state, 'x', String(plenty));
  await fx.client.pExpireAt(keys.state, plenty);
  const w = expectKind(await s.acquire(keys, waiterId('w', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'queued');
  t.is(await fx.client.hGet(keys.state, 'x'), String(plenty));
  t.true(await expiresAt(keys.state, plenty), 'the state key\'s expiry untouched');
  t.true(await expiresAt(keys.queue, plenty), 'the new queue list takes x');
  t.is((await s.extend(keys, a, 5_000)).kind, 'extended');
  t.is(await fx.client.hGet(keys.state, 'x'), String(plenty));

  // Less than half a day left: the next writing call moves x a day on, and both keys with it.
  const short = g.now + DAY / 2 - 60_000;
  await fx.client.hSet(keys.state, 'x', String(short));
  await fx.client.pExpireAt(keys.state, short);
  await fx.client.pExpireAt(keys.queue, short);
  t.deepEqual((await s.heartbeat(keys, 'w', LIVENESS, { held: [] })).holders, []);
  const now = Number(await fx.client.hGet(keys.state, 'x')) - DAY;
  t.true(now >= w.now && now <= (await redisNow(fx.client)), `x = the beat's now + a day (${now})`);
  t.true(await expiresAt(keys.state, now + DAY));
  t.true(await expiresAt(keys.queue, now + DAY));

  // A read (inspect) writes no expiry, even when short.
  await fx.client.hSet(keys.state, 'x', String(short));
  await s.inspect(keys, 10);
  t.is(await fx.client.hGet(keys.state, 'x'), String(short));
});
