/**
 * The engine's quorum handover ("Quorum" in the header of src/protocol/lua/engine.lua), driven
 * directly on a real server: a quorum holder's release passes its grants on the other masters
 * (handover), the waiter it grants finds them at the end of its wake-up, and that waiter's acquire
 * on another master names one as prev, which the acquire releases first, exactly as the old holder's
 * own release arriving just before it would (the same writes, the grant rule run, the queue first);
 * a grant handed over that no acquire released is released by its holder's heartbeat ('g').
 */
import test from 'ava';
import { GUARD_ID } from '../../src/protocol/codes.js';
import { wakeChannel, waiterId } from '../../src/protocol/keys.js';
import { useRedis } from '../helpers/fixture.js';
import { holdersAt } from '../helpers/state.js';
import { LIVENESS, expectKind, kit, numbersOut } from './kit.js';

const fx = useRedis();
const { setup, heldIds, queued, shapeOf, subscribe } = kit(fx);

const id = (sid: string, seq = 1) => waiterId(sid, seq, 5_000, true, 1, 'x');
const QUORUM = { guardMs: 0 };

test('a release with a handover: the wake-up of the waiter it grants carries it, on the fast and the general path; none woken, none carried', async (t) => {
  const handover = `1=${id('p1')},2=${id('p2')}`;
  const shapes: unknown[] = [];
  for (const general of [false, true]) {
    const { prefix, s, keys } = setup();
    const sub = await subscribe(t, [wakeChannel(prefix, 'w')]);
    expectKind(await s.acquire(keys, id('p'), LIVENESS, 'wait', 'lock', 1, undefined, {}, QUORUM), 'granted');
    // the general path: a dead waiter ahead (its session has no deadline), dropped on the way
    if (general) await fx.client.rPush(keys.queue, `${id('dead')} 1`);
    expectKind(await s.acquire(keys, id('w'), LIVENESS, 'wait', 'lock', 1, undefined, {}, QUORUM), 'queued');
    const rel = await s.release(keys, id('p'), handover);
    t.deepEqual([rel.kind, rel.handedOver], ['released', true]);
    const [granted] = await holdersAt(fx.client, keys.state);
    t.is(granted?.id, id('w'));
    const [message] = await sub.received(1);
    t.regex(message ?? '', new RegExp(`^${id('w')} ${granted!.token} \\d+ ${handover}$`), 'the handover ends the wake-up');
    shapes.push(await shapeOf(keys.state));
    // w releases with a handover and nobody waits: nobody carried it
    const alone = await s.release(keys, id('w'), handover);
    t.deepEqual([alone.kind, alone.handedOver], ['released', false]);
  }
  t.deepEqual(shapes[0], shapes[1], 'the fast path writes what the general path writes');
  const { s, keys } = setup();
  expectKind(await s.acquire(keys, id('p'), LIVENESS, 'wait', 'lock', 1), 'granted');
  const plain = await s.release(keys, id('p'));
  t.is(plain.handedOver, undefined, 'a release without a handover is answered as before');
  await t.throwsAsync(s.release(keys, id('q'), '1=a b'), { message: /malformed handover/ });
  await t.throwsAsync(s.release(keys, id('q'), 'x'.repeat(5_000)), { message: /malformed handover/ });
});

test('an acquire naming prev releases that grant first: the only holder (fast path) writes what the general path writes', async (t) => {
  const runs: unknown[] = [];
  for (const again of [undefined, {}]) {
    const { s, keys } = setup();
    expectKind(await s.acquire(keys, id('p'), LIVENESS, 'wait', 'lock', 1, undefined, {}, QUORUM), 'granted');
    const floor = Date.now() * 1_000 + 5_000_000;
    const x = expectKind(await s.acquire(keys, id('x'), LIVENESS, 'wait', 'lock', 1, again, {}, { ...QUORUM, floor, prev: id('p') }), 'granted');
    t.is(x.token, floor, 'the floor bounds the token');
    t.deepEqual(await heldIds(keys.state), [id('x')]);
    t.is(await fx.client.hGet(keys.state, 'r'), id('p'), 'prev is remembered as released');
    t.is((await s.release(keys, id('p'))).kind, 'already', 'its holder\'s own release, late, is a repeat');
    runs.push(await shapeOf(keys.state));
  }
  t.deepEqual(runs[0], runs[1]);
});

test('an acquire naming prev when others queue: they are served first, as after prev\'s own release; a prev that holds nothing changes nothing', async (t) => {
  const { prefix, s, keys } = setup();
  const sub = await subscribe(t, [wakeChannel(prefix, 'w')]);
  expectKind(await s.acquire(keys, id('p'), LIVENESS, 'wait', 'lock', 1, undefined, {}, QUORUM), 'granted');
  expectKind(await s.acquire(keys, id('w'), LIVENESS, 'wait', 'lock', 1, undefined, {}, QUORUM), 'queued');
  const x = await s.acquire(keys, id('x'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { ...QUORUM, prev: id('p') });
  t.is(x.kind, 'queued', 'x waits behind the waiter that was there first');
  t.deepEqual(await heldIds(keys.state), [id('w')], 'which prev\'s release granted');
  t.deepEqual(await queued(keys.queue), [id('x')]);
  t.regex((await sub.received(1))[0] ?? '', new RegExp(`^${id('w')} \\d+ \\d+$`), 'and woke');
  // a prev that is not a holder (released already, or never held): nothing else changes
  const before = await fx.client.hGetAll(keys.state);
  const y = await s.acquire(keys, id('y'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { ...QUORUM, prev: id('p') });
  t.is(y.kind, 'queued');
  t.is((await fx.client.hGetAll(keys.state)).h, before.h, 'the holder stays');
  t.deepEqual(await queued(keys.queue), [id('x'), id('y')]);
  await t.throwsAsync(s.acquire(keys, id('z'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { ...QUORUM, prev: 'not an id' }), { message: /malformed prev/ });
  await t.throwsAsync(s.acquire(keys, id('z'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { ...QUORUM, prev: id('z') }), { message: /malformed prev/ });
  await t.throwsAsync(s.acquire(keys, id('z'), LIVENESS, 'wait', 'lock', 1, undefined, {}, { ...QUORUM, prev: GUARD_ID }), { message: /malformed prev/ });
});

async function commandCalls(command: string): Promise<number> {
  const info = String(await fx.client.sendCommand(['INFO', 'commandstats']));
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
}

// serial: no other test of this file runs commands meanwhile (the LRANGE count is the server's)
test.serial('a handed-over grant no acquire released is released by its holder\'s heartbeat (\'g\'), without a scan of the queue', async (t) => {
  const { s, keys } = setup();
  expectKind(await s.acquire(keys, id('p'), LIVENESS, 'wait', 'lock', 1, undefined, {}, QUORUM), 'granted');
  expectKind(await s.acquire(keys, id('w'), LIVENESS, 'wait', 'lock', 1, undefined, {}, QUORUM), 'queued');
  const scans = await commandCalls('lrange');
  const beat = await s.heartbeat(keys, 'p', LIVENESS, { held: [], dropped: [{ id: id('p'), grant: true }] });
  t.is(await commandCalls('lrange'), scans, 'no scan of the queue for a grant');
  t.deepEqual(beat.holders, [], 'p holds nothing after the beat');
  t.deepEqual(await heldIds(keys.state), [id('w')], 'and the waiter behind it is granted');
  t.is(numbersOut(await fx.client.hGet(keys.state, 'r') ?? ''), numbersOut(id('p')));
  // already gone (an acquire released it): the beat changes nothing
  const again = await s.heartbeat(keys, 'p', LIVENESS, { held: [], dropped: [{ id: id('p'), grant: true }] });
  t.deepEqual(again.holders, []);
  t.deepEqual(await heldIds(keys.state), [id('w')]);
});
