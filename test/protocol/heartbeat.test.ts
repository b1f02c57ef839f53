/**
 * heartbeat.lua, driven directly (src/protocol/lua/heartbeat.lua states the contract): it refreshes
 * the session's liveness and says whether it had lapsed, reaps dead sessions, renews only the
 * auto-renewed leases it names (never shortening one), confirms this session's hand-off grants
 * (named: granted + lease, or now + lease when auto-renewed; unnamed: now + lease), gives up the
 * "-id" leases and waits, grants on, reports this session's holders only, and names a queue key of
 * the wrong type while still renewing the holders. "?id" (the newest waiter) reports a lapse when
 * Redis has that id neither queued nor granted; "~" answers the subscribers of the session's shard
 * wake-up channel of the name (5th reply element).
 */
import test from 'ava';
import { lockKeys, shardWakeChannel, wakeChannel, waiterId } from '../../src/protocol/keys.js';
import { Scripts, type HolderReport } from '../../src/protocol/scripts.js';
import { useRedis } from '../helpers/fixture.js';
import { holdersAt, type HolderEntry } from '../helpers/state.js';
import { sleep, LIVENESS, expectKind, kit } from './kit.js';
import { testUnless, withoutShardedPubSub } from '../helpers/server-version.js';

/** The tests of sharded pub/sub, which a server before Redis 7.0 lacks: skipped there, with the reason. */
const shardedTest = testUnless(withoutShardedPubSub());

const fx = useRedis();
const { setup } = kit(fx);

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const sorted = (hs: HolderReport[]) => [...hs].sort(byId);

async function entry(stateKey: string, id: string): Promise<HolderEntry | undefined> {
  return (await holdersAt(fx.client, stateKey)).find((h) => h.id === id);
}

/** `idW` of session `sid` queued behind a holder of another session, then granted by a hand-off (unconfirmed). */
async function handOff(s: Scripts, keys: ReturnType<typeof lockKeys>, idW: string) {
  const idH = waiterId('holder', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, idH, LIVENESS, 'wait', 'lock', 1), 'granted');
  const w = expectKind(await s.acquire(keys, idW, LIVENESS, 'wait', 'lock', 1), 'queued');
  const rel = await s.release(keys, idH);
  if (rel.kind !== 'released') throw new Error(`release: ${rel.kind}`);
  return { ticket: w.ticket, grantedAt: rel.now };
}

test('lapsed the first time, not on a repeat, again once the liveness ran out; the deadline is now + liveness', async (t) => {
  const { s, keys } = setup();
  const first = await s.heartbeat(keys, 's', LIVENESS);
  t.true(first.lapsed, 'a session Redis does not know has lapsed');
  t.deepEqual(first.holders, []);
  t.is(first.badQueue, undefined);
  t.is(await fx.client.zScore(keys.sessions, 's'), first.now + LIVENESS);
  const second = await s.heartbeat(keys, 's', LIVENESS);
  t.false(second.lapsed);
  t.is(await fx.client.zScore(keys.sessions, 's'), second.now + LIVENESS);

  t.true((await s.heartbeat(keys, 'q', 100)).lapsed);
  await sleep(300);
  t.true((await s.heartbeat(keys, 'q', 100)).lapsed, 'its 100 ms deadline had passed');
});

test('renews only the named auto-renewed leases (exp = now + lease) and never shortens one', async (t) => {
  const { s, keys } = setup();
  const a = waiterId('s', 1, 3_000, true, 1, 'x'); // named, renewed
  const b = waiterId('s', 2, 3_000, true, 1, 'x'); // not named: must run out
  const c = waiterId('s', 3, 3_000, false, 1, 'x'); // named, not auto-renewed
  const ga = expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'semaphore', 3), 'granted');
  const gb = expectKind(await s.acquire(keys, b, LIVENESS, 'wait', 'semaphore', 3), 'granted');
  const gc = expectKind(await s.acquire(keys, c, LIVENESS, 'wait', 'semaphore', 3), 'granted');
  await sleep(100);
  const hb = await s.heartbeat(keys, 's', LIVENESS, [a, c]);
  t.true(hb.now >= ga.now + 90);
  t.deepEqual(sorted(hb.holders), [
    { id: a, token: ga.token, exp: hb.now + 3_000 },
    { id: b, token: gb.token, exp: gb.exp },
    { id: c, token: gc.token, exp: gc.exp },
  ]);
  t.is((await entry(keys.state, a))?.exp, hb.now + 3_000);
  t.is((await entry(keys.state, b))?.exp, gb.exp);
  t.is((await entry(keys.state, c))?.exp, gc.exp);

  // A deadline later than now + lease (written here directly) is kept: a renewal never shortens.
  const later = hb.now + 60_000;
  await fx.client.hSet(keys.state, a, `${ga.token} ${later} 3000 ${ga.now} 1`);
  const hb2 = await s.heartbeat(keys, 's', LIVENESS, [a]);
  t.is(hb2.holders.find((h) => h.id === a)?.exp, later);
  t.is((await entry(keys.state, a))?.exp, later);
});

test('a named hand-off grant is confirmed at granted + lease, or now + lease when auto-renewed', async (t) => {
  const { s, keys } = setup();
  const w = waiterId('w', 1, 5_000, false, 1, 'x');
  const g = await handOff(s, keys, w);
  t.false((await entry(keys.state, w))?.confirmed, 'unconfirmed before the beat');
  await sleep(100);
  const hb = await s.heartbeat(keys, 'w', LIVENESS, [w]);
  t.true(hb.now >= g.grantedAt + 90);
  t.deepEqual(hb.holders, [{ id: w, token: g.ticket, exp: g.grantedAt + 5_000 }], 'granted + lease');
  const e = await entry(keys.state, w);
  t.true(e?.confirmed);
  t.is(e?.exp, g.grantedAt + 5_000);
  await s.release(keys, w);

  const r = waiterId('r', 1, 2_000, true, 1, 'x');
  const gr = await handOff(s, keys, r);
  await sleep(100);
  const hbr = await s.heartbeat(keys, 'r', LIVENESS, [r]);
  t.deepEqual(hbr.holders, [{ id: r, token: gr.ticket, exp: hbr.now + 2_000 }], 'auto-renewed: now + lease');
  t.true((await entry(keys.state, r))?.confirmed);
  t.is((await entry(keys.state, r))?.exp, hbr.now + 2_000);
  await s.release(keys, r);

  // Named, not auto-renewed, and granted + lease already passed: the grant ends at this beat.
  const late = waiterId('l', 1, 100, false, 1, 'x');
  await handOff(s, keys, late);
  await sleep(300);
  const hbl = await s.heartbeat(keys, 'l', LIVENESS, [late]);
  t.deepEqual(hbl.holders, []);
  t.is(await entry(keys.state, late), undefined);
});

test('an unnamed hand-off grant (lost wake-up) is confirmed at now + lease, once', async (t) => {
  const { s, keys } = setup();
  const w = waiterId('w', 1, 5_000, true, 1, 'x');
  const g = await handOff(s, keys, w);
  await sleep(100);
  const hb = await s.heartbeat(keys, 'w', LIVENESS);
  t.deepEqual(hb.holders, [{ id: w, token: g.ticket, exp: hb.now + 5_000 }]);
  const e = await entry(keys.state, w);
  t.true(e?.confirmed);
  t.is(e?.granted, hb.now, 'the lease starts at this beat');
  t.is(e?.exp, hb.now + 5_000);
  await sleep(50);
  const again = await s.heartbeat(keys, 'w', LIVENESS);
  t.deepEqual(again.holders, [{ id: w, token: g.ticket, exp: hb.now + 5_000 }], 'not renewed by later beats that do not name it');
});

test('"-id" releases a holder of this session (and grants on) or takes a waiter of it out of the queue; another session\'s id is ignored', async (t) => {
  const { s, keys } = setup();
  const a = waiterId('s', 1, 5_000, true, 1, 'x');
  const w = waiterId('w', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'granted');
  const qw = expectKind(await s.acquire(keys, w, LIVENESS, 'wait', 'lock', 1), 'queued');
  const hb = await s.heartbeat(keys, 's', LIVENESS, [`-${a}`]);
  t.deepEqual(hb.holders, []);
  const held = await holdersAt(fx.client, keys.state);
  t.deepEqual(
    held.map((h) => [h.id, h.token]),
    [[w, qw.ticket]],
    'a released, w granted',
  );
  t.is(await fx.client.hGet(keys.state, 'r'), a, 'remembered as a releaser');
  t.is((await s.release(keys, a)).kind, 'already');

  const q = waiterId('s', 2, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, q, LIVENESS, 'wait', 'lock', 1), 'queued');
  await s.heartbeat(keys, 's', LIVENESS, [`-${q}`]);
  t.is(await fx.client.zScore(keys.queue, q), null, 'the waiter left the queue');
  t.is((await s.cancel(keys, q)).kind, 'not-found');

  await s.heartbeat(keys, 's', LIVENESS, [`-${w}`]);
  t.deepEqual((await holdersAt(fx.client, keys.state)).map((h) => h.id), [w], "another session's holder is not released");
});

test("reports only this session's holders", async (t) => {
  const { s, keys } = setup();
  const a1 = waiterId('s', 1, 5_000, true, 1, 'x');
  const a2 = waiterId('s', 2, 5_000, true, 1, 'x');
  const b1 = waiterId('u', 1, 5_000, true, 1, 'x');
  const c1 = waiterId('s1', 1, 5_000, true, 1, 'x'); // a session whose id starts with "s"
  const g1 = expectKind(await s.acquire(keys, a1, LIVENESS, 'wait', 'semaphore', 4), 'granted');
  const g2 = expectKind(await s.acquire(keys, a2, LIVENESS, 'wait', 'semaphore', 4), 'granted');
  const gb = expectKind(await s.acquire(keys, b1, LIVENESS, 'wait', 'semaphore', 4), 'granted');
  expectKind(await s.acquire(keys, c1, LIVENESS, 'wait', 'semaphore', 4), 'granted');
  const hs = await s.heartbeat(keys, 's', LIVENESS, [a1, a2]);
  t.deepEqual(
    sorted(hs.holders).map((h) => [h.id, h.token]),
    [
      [a1, g1.token],
      [a2, g2.token],
    ],
  );
  const hu = await s.heartbeat(keys, 'u', LIVENESS);
  t.deepEqual(hu.holders, [{ id: b1, token: gb.token, exp: gb.exp }]);
});

test('reaps dead sessions from the sessions key', async (t) => {
  const { s, keys } = setup();
  await s.heartbeat(keys, 'live', LIVENESS); // first: the sessions key then lives 2 x 10 s
  await s.heartbeat(keys, 'dead', 100);
  t.not(await fx.client.zScore(keys.sessions, 'dead'), null);
  await sleep(300);
  const hb = await s.heartbeat(keys, 'live', LIVENESS);
  t.is(await fx.client.zScore(keys.sessions, 'dead'), null, 'ZREMRANGEBYSCORE dropped it');
  t.is(await fx.client.zScore(keys.sessions, 'live'), hb.now + LIVENESS);
  t.deepEqual(await fx.client.zRange(keys.sessions, 0, -1), ['live']);
});

test("grants on when a holder's lease ran out, and reports that grant in the same reply (now + lease)", async (t) => {
  const { s, keys } = setup();
  const h = waiterId('h', 1, 100, false, 1, 'x');
  const w = waiterId('w', 1, 2_000, true, 1, 'x');
  expectKind(await s.acquire(keys, h, LIVENESS, 'wait', 'lock', 1), 'granted');
  const qw = expectKind(await s.acquire(keys, w, LIVENESS, 'wait', 'lock', 1), 'queued');
  await sleep(300);
  const hb = await s.heartbeat(keys, 'w', LIVENESS);
  t.deepEqual(hb.holders, [{ id: w, token: qw.ticket, exp: hb.now + 2_000 }]);
  const held = await holdersAt(fx.client, keys.state);
  t.deepEqual(
    held.map((e) => [e.id, e.confirmed]),
    [[w, true]],
    'the expired holder is gone, the grant is confirmed',
  );
  t.is(await fx.client.exists(keys.queue), 0);
});

test('a queue key of the wrong type is named in the 4th reply element, and the holders are still renewed', async (t) => {
  const { s, keys } = setup();
  const a = waiterId('s', 1, 5_000, true, 1, 'x');
  const ga = expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'granted');
  await fx.client.set(keys.queue, 'not a zset');
  await sleep(100);
  const hb = await s.heartbeat(keys, 's', LIVENESS, [a]);
  t.is(hb.badQueue, keys.queue);
  t.deepEqual(hb.holders, [{ id: a, token: ga.token, exp: hb.now + 5_000 }]);
  t.true(hb.now + 5_000 > ga.exp);
  t.is((await entry(keys.state, a))?.exp, hb.now + 5_000, 'renewed in Redis');
  t.is(await fx.client.get(keys.queue), 'not a zset', 'the key is left as it is');
});

test('"?id": the newest waiter queued or holding is no lapse; an id Redis has neither queued nor granted is', async (t) => {
  const { s, keys } = setup();
  const h = waiterId('h', 1, 5_000, true, 1, 'x');
  const w = waiterId('w', 1, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, h, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, w, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.false((await s.heartbeat(keys, 'w', LIVENESS)).lapsed, 'the session is live (the enqueue refreshed it)');
  t.false((await s.heartbeat(keys, 'w', LIVENESS, [`?${w}`])).lapsed, 'a queued waiter');

  const gone = waiterId('w', 2, 5_000, true, 1, 'x'); // never enqueued (a failover lost the enqueue)
  t.true((await s.heartbeat(keys, 'w', LIVENESS, [`?${gone}`])).lapsed, 'neither queued nor a holder');
  t.false((await s.heartbeat(keys, 'w', LIVENESS)).lapsed, 'the same live session without "?id": no lapse');

  await s.heartbeat(keys, 'h', LIVENESS, [h]); // an immediate grant does not register its session: this beat does
  t.false((await s.heartbeat(keys, 'h', LIVENESS, [h, `?${h}`])).lapsed, 'an immediate holder');
  t.is((await s.release(keys, h)).kind, 'released');
  t.true((await s.heartbeat(keys, 'h', LIVENESS, [`?${h}`])).lapsed, 'a holder that released is neither any more');

  // w was granted by that hand-off (unconfirmed until a beat): a holder, so no lapse.
  const hb = await s.heartbeat(keys, 'w', LIVENESS, [w, `?${w}`]);
  t.false(hb.lapsed, 'a hand-off holder');
  t.deepEqual(hb.holders.map((x) => x.id), [w]);

  // A waiter whose cancel went through is gone from the queue: a lapse.
  const v = waiterId('w', 3, 5_000, true, 1, 'x');
  expectKind(await s.acquire(keys, v, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.false((await s.heartbeat(keys, 'w', LIVENESS, [w, `?${v}`])).lapsed);
  t.is((await s.cancel(keys, v)).kind, 'cancelled');
  t.true((await s.heartbeat(keys, 'w', LIVENESS, [w, `?${v}`])).lapsed, 'cancelled: not queued any more');
  t.deepEqual((await s.heartbeat(keys, 'w', LIVENESS, [w])).holders.map((x) => x.id), [w], 'the holder is untouched by "?id"');
});

shardedTest('"~": subscribers on the session\'s shard channel of the name (PUBSUB SHARDNUMSUB); absent unless asked', async (t) => {
  const { prefix, s, keys } = setup();
  const channel = shardWakeChannel(prefix, 'n', 'w');
  t.is(channel, `${prefix}:{n}:wake:w`);
  const none = await s.heartbeat(keys, 'w', LIVENESS, ['~']);
  t.is(none.subscribers, 0, 'nobody subscribed');
  t.is((await s.heartbeat(keys, 'w', LIVENESS)).subscribers, undefined, 'not asked: no subscribers field');

  const sub = fx.client.duplicate();
  sub.on('error', () => undefined);
  t.teardown(() => (sub.isOpen ? sub.disconnect().catch(() => undefined) : undefined));
  await sub.connect();
  await sub.sSubscribe(channel, () => undefined);
  // Other channels do not count: another session's, this session's on another name, a plain one.
  await sub.sSubscribe(shardWakeChannel(prefix, 'n', 'other'), () => undefined);
  await sub.sSubscribe(shardWakeChannel(prefix, 'm', 'w'), () => undefined);
  await sub.subscribe(wakeChannel(prefix, 'w'), () => undefined);

  const one = await s.heartbeat(keys, 'w', LIVENESS, ['~']);
  t.is(one.subscribers, 1, 'one SSUBSCRIBEd connection');
  t.false(one.lapsed);
  t.is((await s.heartbeat(keys, 'other', LIVENESS, ['~'])).subscribers, 1, "the other session's channel");
  t.is((await s.heartbeat(keys, 'x', LIVENESS, ['~'])).subscribers, 0);

  // "~" with lease ids and "?id": each does its own part.
  const a = waiterId('w', 1, 5_000, true, 1, 'x');
  const g = expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'granted');
  const mixed = await s.heartbeat(keys, 'w', LIVENESS, [a, '~', `?${a}`]);
  t.deepEqual([mixed.subscribers, mixed.lapsed, mixed.holders], [1, false, [{ id: a, token: g.token, exp: mixed.now + 5_000 }]]);

  await sub.sUnsubscribe(channel);
  t.is((await s.heartbeat(keys, 'w', LIVENESS, ['~'])).subscribers, 0, 'after SUNSUBSCRIBE');
});
