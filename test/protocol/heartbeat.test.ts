/**
 * The engine's heartbeat, driven directly (the header of src/protocol/lua/engine.lua is the spec): it
 * sets the session's deadline (the state's `s` field) and says whether it had lapsed, drops dead
 * sessions from `s`, renews only the auto-renewed leases it names (`held`, never shortening one),
 * confirms this session's hand-off grants (named: granted + lease, or now + lease when auto-renewed;
 * unnamed: now + lease), gives up the `dropped` leases and waits of this session, grants on, reports
 * this session's holders only, and names a queue key of the wrong type while still renewing the
 * holders. `newest` (the newest waiter, "id since") reports a lapse when Redis has it neither queued
 * nor granted; `askSubscribers` answers the subscribers of the session's shard wake-up channel of the
 * name. The old "-id", "?id" and "~" arguments are these Beat fields now; the sessions key is the
 * `s` field (dead sessions are dropped from it when it is rewritten, as ZREMRANGEBYSCORE did).
 */
import test from 'ava';
import { lockKeys, shardWakeChannel, wakeChannel, waiterId } from '../../src/protocol/keys.js';
import { Scripts, type HolderReport } from '../../src/protocol/scripts.js';
import { useRedis } from '../helpers/fixture.js';
import { holdersAt, holderText, sessionsAt, type HolderEntry } from '../helpers/state.js';
import { sleep, LIVENESS, clusterLikeScripts, expectKind, kit } from './kit.js';
import { testUnless, withoutShardedPubSub } from '../helpers/server-version.js';

/** The tests of sharded pub/sub, which a server before Redis 7.0 lacks: skipped there, with the reason. */
const shardedTest = testUnless(withoutShardedPubSub());

const fx = useRedis();
const { setup, queued, deadline } = kit(fx);

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
  const granted = await entry(keys.state, idW);
  if (!granted || granted.confirmed || granted.granted !== rel.now) throw new Error(`not an unconfirmed hand-off: ${JSON.stringify(granted)}`);
  return { token: granted.token, grantedAt: rel.now, queuedAt: w.since };
}

/** Rewrites one holder entry of the `h` field (a state the tests set up directly). */
async function setEntry(stateKey: string, e: HolderEntry): Promise<void> {
  const all = await holdersAt(fx.client, stateKey);
  await fx.client.hSet(stateKey, 'h', all.map((h) => holderText(h.id === e.id ? e : h)).join(';'));
}

test('lapsed the first time, not on a repeat, again once the liveness ran out; the deadline is now + liveness', async (t) => {
  const { s, keys } = setup();
  const first = await s.heartbeat(keys, 's', LIVENESS);
  t.true(first.lapsed, 'a session Redis does not know has lapsed');
  t.deepEqual(first.holders, []);
  t.is(first.badQueue, undefined);
  t.is(await deadline(keys.state, 's'), first.now + LIVENESS);
  const second = await s.heartbeat(keys, 's', LIVENESS);
  t.false(second.lapsed);
  t.is(await deadline(keys.state, 's'), second.now + LIVENESS);

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
  const hb = await s.heartbeat(keys, 's', LIVENESS, { held: [a, c] });
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
  await setEntry(keys.state, { id: a, token: ga.token, exp: later, lease: 3_000, granted: ga.now, confirmed: true });
  const hb2 = await s.heartbeat(keys, 's', LIVENESS, { held: [a] });
  t.is(hb2.holders.find((h) => h.id === a)?.exp, later);
  t.is((await entry(keys.state, a))?.exp, later);
});

test('a named hand-off grant is confirmed at granted + lease, or now + lease when auto-renewed', async (t) => {
  const { s, keys } = setup();
  const w = waiterId('w', 1, 5_000, false, 1, 'x');
  const g = await handOff(s, keys, w);
  t.false((await entry(keys.state, w))?.confirmed, 'unconfirmed before the beat');
  await sleep(100);
  const hb = await s.heartbeat(keys, 'w', LIVENESS, { held: [w] });
  t.true(hb.now >= g.grantedAt + 90);
  t.deepEqual(hb.holders, [{ id: w, token: g.token, exp: g.grantedAt + 5_000 }], 'granted + lease');
  const e = await entry(keys.state, w);
  t.true(e?.confirmed);
  t.is(e?.exp, g.grantedAt + 5_000);
  await s.release(keys, w);

  const r = waiterId('r', 1, 2_000, true, 1, 'x');
  const gr = await handOff(s, keys, r);
  await sleep(100);
  const hbr = await s.heartbeat(keys, 'r', LIVENESS, { held: [r] });
  t.deepEqual(hbr.holders, [{ id: r, token: gr.token, exp: hbr.now + 2_000 }], 'auto-renewed: now + lease');
  t.true((await entry(keys.state, r))?.confirmed);
  t.is((await entry(keys.state, r))?.exp, hbr.now + 2_000);
  await s.release(keys, r);

  // Named, not auto-renewed, and granted + lease already passed: the grant ends at this beat.
  const late = waiterId('l', 1, 100, false, 1, 'x');
  await handOff(s, keys, late);
  await sleep(300);
  const hbl = await s.heartbeat(keys, 'l', LIVENESS, { held: [late] });
  t.deepEqual(hbl.holders, []);
  t.is(await entry(keys.state, late), undefined);
});

test('an unnamed hand-off grant (lost wake-up) is confirmed at now + lease, once', async (t) => {
  const { s, keys } = setup();
  const w = waiterId('w', 1, 5_000, true, 1, 'x');
  const g = await handOff(s, keys, w);
  await sleep(100);
  const hb = await s.heartbeat(keys, 'w', LIVENESS);
  t.deepEqual(hb.holders, [{ id: w, token: g.token, exp: hb.now + 5_000 }]);
  const e = await entry(keys.state, w);
  t.true(e?.confirmed);
  t.is(e?.granted, hb.now, 'the lease starts at this beat');
  t.is(e?.exp, hb.now + 5_000);
  await sleep(50);
  const again = await s.heartbeat(keys, 'w', LIVENESS);
  t.deepEqual(again.holders, [{ id: w, token: g.token, exp: hb.now + 5_000 }], 'not renewed by later beats that do not name it');
});

test('dropped: releases a holder of this session (and grants on) or takes a waiter of it out of the queue; another session\'s holder is not released', async (t) => {
  const { s, keys } = setup();
  const a = waiterId('s', 1, 5_000, true, 1, 'x');
  const w = waiterId('w', 1, 5_000, true, 1, 'x');
  const ga = expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, w, LIVENESS, 'wait', 'lock', 1), 'queued');
  const hb = await s.heartbeat(keys, 's', LIVENESS, { held: [], dropped: [{ id: a }] });
  t.deepEqual(hb.holders, []);
  const held = await holdersAt(fx.client, keys.state);
  t.deepEqual(
    held.map((h) => h.id),
    [w],
    'a released, w granted',
  );
  t.true(held[0]!.token > ga.token);
  t.is(await fx.client.hGet(keys.state, 'r'), a, 'remembered as a releaser');
  t.is((await s.release(keys, a)).kind, 'already');

  const q = waiterId('s', 2, 5_000, true, 1, 'x');
  const q2 = waiterId('s', 3, 5_000, true, 1, 'x');
  const qq = expectKind(await s.acquire(keys, q, LIVENESS, 'wait', 'lock', 1), 'queued');
  expectKind(await s.acquire(keys, q2, LIVENESS, 'wait', 'lock', 1), 'queued');
  await s.heartbeat(keys, 's', LIVENESS, { held: [], dropped: [{ id: q, since: qq.since }] });
  t.deepEqual(await queued(keys.queue), [q2], 'the waiter left the queue (since known)');
  t.is((await s.cancel(keys, q)).kind, 'not-found');
  await s.heartbeat(keys, 's', LIVENESS, { held: [], dropped: [{ id: q2 }] });
  t.is(await fx.client.exists(keys.queue), 0, 'since unknown: found by the id');

  await s.heartbeat(keys, 's', LIVENESS, { held: [], dropped: [{ id: w }] });
  t.deepEqual((await holdersAt(fx.client, keys.state)).map((h) => h.id), [w], "another session's holder is not released");
  t.is(await fx.client.hGet(keys.state, 'r'), a, 'nor remembered as a releaser');
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
  const hs = await s.heartbeat(keys, 's', LIVENESS, { held: [a1, a2] });
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

test('drops dead sessions from the s field', async (t) => {
  const { s, keys } = setup();
  await s.heartbeat(keys, 'live', LIVENESS);
  await s.heartbeat(keys, 'dead', 100);
  t.not(await deadline(keys.state, 'dead'), null);
  await sleep(300);
  const hb = await s.heartbeat(keys, 'live', LIVENESS);
  t.is(await deadline(keys.state, 'dead'), null, 'dropped when s was rewritten');
  t.is(await deadline(keys.state, 'live'), hb.now + LIVENESS);
  t.deepEqual(await sessionsAt(fx.client, keys.state), ['live']);
});

test("grants on when a holder's lease ran out, and reports that grant in the same reply (now + lease)", async (t) => {
  const { s, keys } = setup();
  const h = waiterId('h', 1, 100, false, 1, 'x');
  const w = waiterId('w', 1, 2_000, true, 1, 'x');
  const gh = expectKind(await s.acquire(keys, h, LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, w, LIVENESS, 'wait', 'lock', 1), 'queued');
  await sleep(300);
  const hb = await s.heartbeat(keys, 'w', LIVENESS);
  t.is(hb.holders.length, 1);
  t.true(hb.holders[0]!.token > gh.token, 'a token taken at this grant');
  t.deepEqual(hb.holders, [{ id: w, token: hb.holders[0]!.token, exp: hb.now + 2_000 }]);
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
  await fx.client.set(keys.queue, 'not a list');
  await sleep(100);
  const hb = await s.heartbeat(keys, 's', LIVENESS, { held: [a] });
  t.is(hb.badQueue, keys.queue);
  t.deepEqual(hb.holders, [{ id: a, token: ga.token, exp: hb.now + 5_000 }]);
  t.true(hb.now + 5_000 > ga.exp);
  t.is((await entry(keys.state, a))?.exp, hb.now + 5_000, 'renewed in Redis');
  t.is(await fx.client.get(keys.queue), 'not a list', 'the key is left as it is');
});

test('newest: the newest waiter queued or holding is no lapse; an id Redis has neither queued nor granted is', async (t) => {
  const { s, keys } = setup();
  const h = waiterId('h', 1, 5_000, true, 1, 'x');
  const w = waiterId('w', 1, 5_000, true, 1, 'x');
  const gh = expectKind(await s.acquire(keys, h, LIVENESS, 'wait', 'lock', 1), 'granted');
  const qw = expectKind(await s.acquire(keys, w, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.false((await s.heartbeat(keys, 'w', LIVENESS)).lapsed, 'the session is live (the enqueue refreshed it)');
  t.false((await s.heartbeat(keys, 'w', LIVENESS, { held: [], newest: { id: w, since: qw.since } })).lapsed, 'a queued waiter');

  const gone = waiterId('w', 2, 5_000, true, 1, 'x'); // never enqueued (a failover lost the enqueue)
  t.true((await s.heartbeat(keys, 'w', LIVENESS, { held: [], newest: { id: gone, since: qw.since } })).lapsed, 'neither queued nor a holder');
  t.false((await s.heartbeat(keys, 'w', LIVENESS)).lapsed, 'the same live session without newest: no lapse');

  await s.heartbeat(keys, 'h', LIVENESS, { held: [h] }); // an immediate grant does not register its session: this beat does
  t.false((await s.heartbeat(keys, 'h', LIVENESS, { held: [h], newest: { id: h, since: gh.now } })).lapsed, 'an immediate holder');
  t.is((await s.release(keys, h)).kind, 'released');
  t.true((await s.heartbeat(keys, 'h', LIVENESS, { held: [], newest: { id: h, since: gh.now } })).lapsed, 'a holder that released is neither any more');

  // w was granted by that hand-off (unconfirmed until a beat): a holder, so no lapse.
  const hb = await s.heartbeat(keys, 'w', LIVENESS, { held: [w], newest: { id: w, since: qw.since } });
  t.false(hb.lapsed, 'a hand-off holder');
  t.deepEqual(hb.holders.map((x) => x.id), [w]);

  // A waiter whose cancel went through is gone from the queue: a lapse.
  const v = waiterId('w', 3, 5_000, true, 1, 'x');
  const qv = expectKind(await s.acquire(keys, v, LIVENESS, 'wait', 'lock', 1), 'queued');
  t.false((await s.heartbeat(keys, 'w', LIVENESS, { held: [w], newest: { id: v, since: qv.since } })).lapsed);
  t.is((await s.cancel(keys, v, qv.since)).kind, 'cancelled');
  t.true((await s.heartbeat(keys, 'w', LIVENESS, { held: [w], newest: { id: v, since: qv.since } })).lapsed, 'cancelled: not queued any more');
  t.deepEqual((await s.heartbeat(keys, 'w', LIVENESS, { held: [w] })).holders.map((x) => x.id), [w], 'the holder is untouched by newest');
});

shardedTest('askSubscribers (a cluster\'s beat): subscribers on the session\'s shard channel of the name (PUBSUB SHARDNUMSUB); absent unless asked', async (t) => {
  const { prefix, keys } = setup();
  const s = clusterLikeScripts(fx, prefix); // the engine counts the channel it publishes on: a cluster's
  const channel = shardWakeChannel(prefix, 'n', 'w');
  t.is(channel, `${prefix}:{n}:wake:w`);
  const none = await s.heartbeat(keys, 'w', LIVENESS, { held: [], askSubscribers: true });
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

  const one = await s.heartbeat(keys, 'w', LIVENESS, { held: [], askSubscribers: true });
  t.is(one.subscribers, 1, 'one SSUBSCRIBEd connection');
  t.false(one.lapsed);
  t.is((await s.heartbeat(keys, 'other', LIVENESS, { held: [], askSubscribers: true })).subscribers, 1, "the other session's channel");
  t.is((await s.heartbeat(keys, 'x', LIVENESS, { held: [], askSubscribers: true })).subscribers, 0);

  // askSubscribers with lease ids and newest: each does its own part.
  const a = waiterId('w', 1, 5_000, true, 1, 'x');
  const g = expectKind(await s.acquire(keys, a, LIVENESS, 'wait', 'lock', 1), 'granted');
  const mixed = await s.heartbeat(keys, 'w', LIVENESS, { held: [a], askSubscribers: true, newest: { id: a, since: g.now } });
  t.deepEqual([mixed.subscribers, mixed.lapsed, mixed.holders], [1, false, [{ id: a, token: g.token, exp: mixed.now + 5_000 }]]);

  await sub.sUnsubscribe(channel);
  t.is((await s.heartbeat(keys, 'w', LIVENESS, { held: [], askSubscribers: true })).subscribers, 0, 'after SUNSUBSCRIBE');
});

test('a malformed session id or liveness is an error, and nothing is written', async (t) => {
  const { s, keys } = setup();
  for (const sid of ['a-b', 'a b', 'a%', '']) {
    await t.throwsAsync(s.heartbeat(keys, sid, LIVENESS, { held: [] }), { message: /malformed session id, liveness or held count/ }, sid);
  }
  await t.throwsAsync(s.heartbeat(keys, 'a', Number.NaN, { held: [] }), { message: /malformed session id, liveness or held count/ });
  await t.throwsAsync(s.heartbeat(keys, 'a', 0, { held: [] }), { message: /malformed session id, liveness or held count/ });
  t.is(await fx.client.exists(keys.state), 0, 'no session was written');
});

test('also a liveness of "nan" or 0 on the enqueue is refused (tonumber takes "nan")', async (t) => {
  const { s, keys } = setup();
  for (const liveness of [Number.NaN, 0]) {
    await t.throwsAsync(s.acquire(keys, waiterId('a', 1, 5_000, true, 1, 'x'), liveness, 'wait', 'lock', 1), { message: /malformed waiter id, liveness or kind/ });
  }
  t.is(await fx.client.exists(keys.state), 0);
});
