/**
 * extend.lua, driven directly (src/protocol/lua/extend.lua states the contract): a holder's lease is
 * set to end ms from now and later renewals use ms as the lease; anyone else is not a holder; the
 * state hash never expires before its longest holder's deadline (common.lua flush), also past the
 * 24 h idle TTL.
 */
import test from 'ava';
import { waiterId } from '../../src/protocol/keys.js';
import { type ExtendReply } from '../../src/protocol/scripts.js';
import { useRedis } from '../helpers/fixture.js';
import { holdersAt, redisNow, type HolderEntry } from '../helpers/state.js';
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
  t.is(await fx.client.hGet(keys.state, a), `${g.token} ${r.now + 20_000} 20000 ${r.now} 1`);
  // Shorter than before is allowed too: the lease ends ms from now.
  await sleep(50);
  const shorter = extended(await s.extend(keys, a, 3_000));
  t.is(shorter.exp, shorter.now + 3_000);
  t.is((await entry(keys.state, a))?.lease, 3_000);
  await sleep(50);
  const hb = await s.heartbeat(keys, 'a', LIVENESS, [a]);
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
  t.deepEqual(await fx.client.zRange(keys.queue, 0, -1), [w], 'and stays queued');
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
  const qw = expectKind(await s.acquire(keys, w, LIVENESS, 'wait', 'lock', 1), 'queued');
  await s.release(keys, h);
  t.false((await entry(keys.state, w))?.confirmed);
  const r = extended(await s.extend(keys, w, 3_000));
  t.is(r.exp, r.now + 3_000);
  t.is(await fx.client.hGet(keys.state, w), `${qw.ticket} ${r.now + 3_000} 3000 ${r.now} 1`);
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

  // Another script that refreshes the TTL (a new ticket, a renewal) keeps it too.
  expectKind(await s.acquire(keys, waiterId('b', 1, 5_000, true, 1, 'x'), LIVENESS, 'wait', 'lock', 1), 'queued');
  t.true((await fx.client.pTTL(keys.state)) + (await redisNow(fx.client)) >= r.exp - 2, 'after a new ticket');
  const hb = await s.heartbeat(keys, 'a', LIVENESS, [a]);
  t.is(hb.holders[0]?.exp, hb.now + ms, 'renewed with the 25 h lease');
  t.true((await fx.client.pTTL(keys.state)) + (await redisNow(fx.client)) >= hb.now + ms - 2, 'after a renewal');
  await s.cancel(keys, waiterId('b', 1, 5_000, true, 1, 'x'));

  // Back to a short lease: the TTL is a day again (never shorter than that).
  const short = extended(await s.extend(keys, a, 2_000));
  const pttl2 = await fx.client.pTTL(keys.state);
  t.true(pttl2 <= DAY && pttl2 > DAY - 60_000, `a day (${pttl2} ms)`);
  t.true(pttl2 > short.exp - short.now);
});
