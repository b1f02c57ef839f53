/**
 * The engine's foundation of the quorum chain (DESIGN §8; "Quorum" in the header of
 * src/protocol/lua/engine.lua), driven directly on real servers, one master at a time:
 *   rule 2  an acquire's floor rides in its element ("id since floor", in the name's queue or its
 *           group's list) and bounds the token taken at the grant, immediate or hand-off; the element is
 *           still found by re-runs, cancels and beats; a commit between an enqueue and its grant never
 *           gives two grants one token (the model's mutation TICKET);
 *   rule 4  commit: a holder raises the last token and renews its lease (idempotent), a non-holder is told so;
 *   rule 9  the restart guard: a master that lost its data (and a fresh one) grants nothing on a
 *           quorum name for guardMs after its first quorum call (a pseudo-holder, GUARD_ID, holds it),
 *           whoever calls, then the next call (a heartbeat) grants, with tokens above every earlier
 *           one; single-node calls on other names and guardMs 0 are never held back.
 */
import test from 'ava';
import { GUARD_ID } from '../../src/protocol/codes.js';
import { bornKey, lockKeys, waiterId } from '../../src/protocol/keys.js';
import { Scripts, groupHex } from '../../src/protocol/scripts.js';
import { adaptClient } from '../../src/redis/adapt.js';
import { ownRedis, openClient } from '../helpers/cleanup.js';
import { useRedis } from '../helpers/fixture.js';
import { newPrefix } from '../helpers/redis.js';
import type { RedisClient } from '../helpers/redis-client.js';
import { holdersAt } from '../helpers/state.js';
import { sleep, LIVENESS, expectKind, kit } from './kit.js';

const fx = useRedis();
const { setup, elements } = kit(fx);

const id = (sid: string, seq = 1, lease = 5_000) => waiterId(sid, seq, lease, true, 1, 'x');
/** A token well above any Redis time in µs this test sees (an hour ahead): a floor that must win. */
const ahead = (now: number, ms = 3_600_000) => (now + ms) * 1000;

async function tokenOf(stateKey: string, holder: string, client: RedisClient = fx.client): Promise<number | undefined> {
  return (await holdersAt(client, stateKey)).find((h) => h.id === holder)?.token;
}

async function lastToken(stateKey: string, client: RedisClient = fx.client): Promise<number> {
  return Number(await client.hGet(stateKey, 't'));
}

async function commandCalls(client: RedisClient, command: string): Promise<number> {
  const info = String(await client.sendCommand(['INFO', 'commandstats']));
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
}

test('floor at an immediate grant: the token is max(last + 1, floor, Redis time); a floor below them changes nothing', async (t) => {
  const { s, keys, prefix } = setup();
  const a = expectKind(await s.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { floor: 5 }), 'granted');
  t.true(a.token >= a.now * 1000, 'a low floor: the Redis-time seed wins');
  t.is(await s.release(keys, id('a')).then((r) => r.kind), 'released');
  const floor = ahead(a.now);
  const b = expectKind(await s.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { floor }), 'granted');
  t.is(b.token, floor, 'the floor is the token');
  t.is(await lastToken(keys.state), floor, 'and the last token');
  await s.release(keys, id('b'));
  const c = expectKind(await s.acquire(keys, id('c'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { floor: floor - 7 }), 'granted');
  t.is(c.token, floor + 1, 'a floor below last: last + 1');
  t.is(await fx.client.exists(bornKey(prefix)), 0, 'no guardMs: the born key is not touched');
});

test('floor at a hand-off: the waiter\'s element carries it, the token taken when the release grants respects it', async (t) => {
  const { s, keys } = setup();
  const a = expectKind(await s.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1), 'granted');
  const floor = ahead(a.now);
  const b = expectKind(await s.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { floor }), 'queued');
  const c = expectKind(await s.acquire(keys, id('c'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { floor: 1 }), 'queued');
  t.is(b.guardUntil, undefined, 'no guard');
  t.deepEqual(await elements(keys.queue), [`${id('b')} ${b.since} ${floor}`, `${id('c')} ${c.since} 1`]);
  t.is(await lastToken(keys.state), a.token, 'an enqueue takes no token');
  await s.release(keys, id('a'));
  t.is(await tokenOf(keys.state, id('b')), floor, 'granted at the release: its floor');
  await s.release(keys, id('b'));
  t.is(await tokenOf(keys.state, id('c')), floor + 1, 'the next grant: above it');
});

test('floor in group mode: the element in its group\'s list carries it, and the grant respects it', async (t) => {
  const { s, keys } = setup();
  const a = expectKind(await s.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1), 'granted');
  const floor = ahead(a.now);
  const b = expectKind(await s.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1, undefined, { group: 'g1' }, { floor }), 'queued');
  const list = `${keys.queue}:${groupHex('g1')}`;
  t.deepEqual(await elements(list), [`${id('b')} ${b.since} ${floor}`]);
  await s.release(keys, id('a'));
  t.is(await tokenOf(keys.state, id('b')), floor);
});

test('TICKET: a commit that raises last after a waiter enqueued never gives two grants one token', async (t) => {
  const { s, keys } = setup();
  const a = expectKind(await s.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { floor: a.token }), 'queued');
  // A's chain got T on a master further on; it commits T here while B waits.
  const T = ahead(a.now);
  t.is((await s.commit(keys, id('a'), T)).kind, 'committed');
  t.is(await lastToken(keys.state), T);
  await s.release(keys, id('a'));
  const b = await tokenOf(keys.state, id('b'));
  t.true(b !== undefined && b > T, `B's token (${b}) is above the committed ${T}, never equal`);
});

test('commit: a holder raises last (never lowers it) and renews its lease, twice alike; a non-holder is told so and changes nothing', async (t) => {
  const { s, keys } = setup();
  const a = expectKind(await s.acquire(keys, id('a', 1, 2_000), LIVENESS, 'wait', 'lock', 1), 'granted');
  const T = ahead(a.now);
  await sleep(20);
  const c1 = await s.commit(keys, id('a', 1, 2_000), T);
  if (c1.kind !== 'committed') return t.fail(`commit: ${c1.kind}`);
  t.is(c1.exp, c1.now + 2_000, 'renewed: now + its lease');
  t.is((await holdersAt(fx.client, keys.state))[0]!.exp, c1.exp);
  t.is(await tokenOf(keys.state, id('a', 1, 2_000)), a.token, 'the holder keeps its own token');
  const c2 = await s.commit(keys, id('a', 1, 2_000), T);
  t.like(c2, { kind: 'committed' });
  t.is(await lastToken(keys.state), T, 'a repeat: the same last');
  t.like(await s.commit(keys, id('a', 1, 2_000), a.token), { kind: 'committed' });
  t.is(await lastToken(keys.state), T, 'a lower T never lowers last');

  const before = await fx.client.hGetAll(keys.state);
  const other = await s.commit(keys, id('x'), T + 1_000);
  t.is(other.kind, 'not-holder');
  t.deepEqual(await fx.client.hGetAll(keys.state), before, 'a non-holder\'s commit writes nothing');
  await s.release(keys, id('a', 1, 2_000));
  t.is((await s.commit(keys, id('a', 1, 2_000), T + 1_000)).kind, 'not-holder', 'after its release');
  t.is(await lastToken(keys.state), T);
});

test('commit confirms an unconfirmed hand-off: its lease starts at the commit', async (t) => {
  const { s, keys } = setup();
  expectKind(await s.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1), 'granted');
  expectKind(await s.acquire(keys, id('b', 1, 3_000), LIVENESS, 'wait', 'lock', 1), 'queued');
  await s.release(keys, id('a'));
  t.false((await holdersAt(fx.client, keys.state))[0]!.confirmed);
  const c = await s.commit(keys, id('b', 1, 3_000), 1);
  if (c.kind !== 'committed') return t.fail(c.kind);
  t.like((await holdersAt(fx.client, keys.state))[0], { id: id('b', 1, 3_000), confirmed: true, exp: c.now + 3_000, granted: c.now });
});

test.serial('a quorum element is found without a scan: a re-run, the heartbeat\'s newest and given-up entries, and a cancel name its floor', async (t) => {
  const { s, keys } = setup();
  const a = expectKind(await s.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1), 'granted');
  const floor = ahead(a.now);
  const q = { floor };
  const b = expectKind(await s.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1, undefined, {}, q), 'queued');
  const c = expectKind(await s.acquire(keys, id('c'), LIVENESS, 'wait', 'lock', 1, undefined, {}, q), 'queued');
  const d = expectKind(await s.acquire(keys, id('d'), LIVENESS, 'wait', 'lock', 1, undefined, {}, q), 'queued');
  const scans = await commandCalls(fx.client, 'lrange');

  const again = expectKind(await s.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1, { since: b.since }, {}, q), 'queued');
  t.like(again, { since: b.since, position: 1 });
  const beat = await s.heartbeat(keys, 'c', LIVENESS, { held: [], newest: { id: id('c'), since: c.since, floor } });
  t.false(beat.lapsed, 'the newest waiter is found');
  await s.heartbeat(keys, 'd', LIVENESS, { held: [], dropped: [{ id: id('d'), since: d.since, floor }] });
  t.is((await s.cancel(keys, id('c'), c.since, undefined, floor)).kind, 'cancelled');
  t.is(await commandCalls(fx.client, 'lrange'), scans, 'no LRANGE: LPOS and LREM found each element');
  t.deepEqual(await elements(keys.queue), [`${id('b')} ${b.since} ${floor}`], 'c and d left, nothing was pushed twice');

  // A caller that does not know the floor still finds the element, by a scan of its id.
  t.false((await s.heartbeat(keys, 'b', LIVENESS, { held: [], newest: { id: id('b'), since: b.since } })).lapsed);
  t.like(expectKind(await s.acquire(keys, id('b'), LIVENESS, 'wait', 'lock', 1, {}, {}, q), 'queued'), { since: b.since, position: 1 });
  t.is((await s.cancel(keys, id('b'), b.since)).kind, 'cancelled');
  t.is(await fx.client.exists(keys.queue), 0);
});

test('malformed quorum arguments are refused with InvalidArgumentError', async (t) => {
  const { s, keys } = setup();
  for (const floor of [1.5, -1, 2 ** 60]) {
    await t.throwsAsync(s.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { floor }), { code: 'INVALID_ARGUMENT' }, `floor ${floor}`);
  }
  await t.throwsAsync(s.acquire(keys, id('a'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { guardMs: -5 }), { code: 'INVALID_ARGUMENT' });
  await t.throwsAsync(s.commit(keys, id('a'), Number.NaN), { code: 'INVALID_ARGUMENT' });
});

/** The restart guard, on a server of this test's own (it is killed and restarted empty). */
test.serial('restart guard: a fresh or restarted-empty master grants nothing on a quorum name for guardMs, then the heartbeat grants above every earlier token', async (t) => {
  const GUARD = 800;
  const server = await ownRedis(t, { owned: true });
  const client = await openClient(t, server.url);
  const prefix = newPrefix();
  const s = new Scripts(adaptClient(client), prefix);
  const born = bornKey(prefix);
  const X = lockKeys(prefix, 'X');
  const guard = { guardMs: GUARD };
  const tokens: number[] = [];

  /** A beat of session `sid` once Redis's clock passed `until`: its waiter is granted by it. */
  async function beatAfter(until: number, sid: string) {
    for (let i = 0; i < 50; i++) {
      const r = await s.heartbeat(X, sid, LIVENESS);
      if (r.now >= until) return r;
      t.deepEqual(r.holders, [], `nothing granted during the guard (beat at ${r.now} < ${until})`);
      await sleep(Math.min(until - r.now + 5, 200));
    }
    throw new Error('the guard did not end');
  }

  async function guarded(label: string) {
    // A single-node call first: it never waits, nor sets the born key.
    const plain = expectKind(await s.acquire(lockKeys(prefix, `plain-${label}`), id('p'), LIVENESS, 'wait', 'lock', 1), 'granted');
    t.is(await client.exists(born), 0, `${label}: a single-node call does not set the born key`);
    tokens.push(plain.token);

    const w = expectKind(await s.acquire(X, id('w'), LIVENESS, 'wait', 'lock', 1, undefined, {}, guard), 'queued');
    t.is(w.guardUntil, w.now + GUARD, `${label}: the first quorum call starts the guard; the reply says when it ends`);
    t.is(await client.hGet(born, 'b'), String(w.now), `${label}: born is set to now`);
    t.deepEqual((await holdersAt(client, X.state)).map((h) => [h.id, h.token, h.exp]), [[GUARD_ID, 0, w.guardUntil]], `${label}: the guard holds the name until its end`);
    expectKind(await s.acquire(X, id('v'), LIVENESS, 'wait', 'lock', 1, undefined, {}, guard), 'queued');
    const busy = expectKind(await s.acquire(X, id('y'), LIVENESS, 'try', 'lock', 1, undefined, {}, guard), 'busy');
    t.like(busy, { guardUntil: w.guardUntil, heldLeftMs: w.guardUntil! - busy.now }, `${label}: try is busy until the guard's end`);
    // A single-node call on the guarded name waits behind the guard too (and is not told of it).
    const single = expectKind(await s.acquire(X, id('u'), LIVENESS, 'try', 'lock', 1), 'busy');
    t.is(single.guardUntil, undefined);
    // Other quorum names are guarded as well; a caller that opts out (guardMs 0), and single-node ones, are not.
    expectKind(await s.acquire(lockKeys(prefix, `q-${label}`), id('q'), LIVENESS, 'try', 'lock', 1, undefined, {}, guard), 'busy');
    // (a named group's request, which turns the name to group mode and runs its grant rule in the call)
    expectKind(await s.acquire(lockKeys(prefix, `g-${label}`), id('g'), LIVENESS, 'wait', 'lock', 1, undefined, { group: 'g1' }, guard), 'queued');
    const optOut = expectKind(await s.acquire(lockKeys(prefix, `o-${label}`), id('o'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { guardMs: 0 }), 'granted');
    tokens.push(optOut.token);
    tokens.push(expectKind(await s.acquire(lockKeys(prefix, `plain2-${label}`), id('p'), LIVENESS, 'wait', 'lock', 1), 'granted').token);
    // Whoever calls on the guarded name grants nothing: a cancel of the head does not hand on to v.
    t.is((await s.cancel(X, id('w'), w.since)).kind, 'cancelled');
    t.deepEqual((await holdersAt(client, X.state)).map((h) => h.id), [GUARD_ID], `${label}: nothing granted while the guard lasts`);

    const r = await beatAfter(w.guardUntil!, 'v');
    t.is(r.holders.length, 1, `${label}: the first beat after the guard grants the head`);
    t.is(r.holders[0]!.id, id('v'));
    t.true(tokens.every((x) => r.holders[0]!.token > x), `${label}: its token is above every earlier one`);
    tokens.push(r.holders[0]!.token);
    t.is((await s.release(X, id('v'))).kind, 'released');
    // After the guard, a quorum acquire is granted at once, and born stays.
    const after = expectKind(await s.acquire(X, id('z'), LIVENESS, 'wait', 'lock', 1, undefined, {}, guard), 'granted');
    t.true(after.token > Math.max(...tokens));
    tokens.push(after.token);
    t.is(await client.hGet(born, 'b'), String(w.now));
  }

  await guarded('fresh server');
  const holder = (await holdersAt(client, X.state))[0]!;
  t.is(holder.id, id('z'), 'z holds X when the master dies');
  await server.kill();
  await server.restart();
  await guarded('restarted empty');
  t.is(await tokenOf(X.state, id('z'), client), tokens.at(-1), 'X is held again, by a new grant');
});
