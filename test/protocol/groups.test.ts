/**
 * The engine's group mode, driven directly (the header of src/protocol/lua/engine.lua is the spec;
 * the server matrix runs this folder on Redis 6.2 and Valkey too): a named group that has to wait
 * turns the name to group mode, with a list per group and a rotation; grants follow the rotation;
 * a group at its cap is parked and comes back at its place; a cancel, a heartbeat's dropped waiter
 * and a lapse's re-run find the waiter in its group's list; every group key is gone once nothing
 * waits; bad groups are refused.
 */
import test from 'ava';
import { waiterId } from '../../src/protocol/keys.js';
import { groupHex } from '../../src/protocol/scripts.js';
import { useRedis } from '../helpers/fixture.js';
import { LIVENESS, expectKind, kit } from './kit.js';

const fx = useRedis();
const { setup } = kit(fx);

const id = (sid: string, n = 1, weight = 1) => waiterId(sid, n, 5_000, true, weight, 'x');

async function keysOf(prefix: string): Promise<string[]> {
  return (await fx.client.keys(`${prefix}:*`)).sort();
}

test('a named group that must wait turns the name to group mode; grants follow the rotation; nothing is left after', async (t) => {
  const { s, keys, prefix } = setup();
  const h = expectKind(await s.acquire(keys, id('h'), LIVENESS, 'wait', 'lock', 1), 'granted');
  const d = expectKind(await s.acquire(keys, id('d'), LIVENESS, 'wait', 'lock', 1), 'queued'); // the default group
  const a1 = expectKind(await s.acquire(keys, id('a', 1), LIVENESS, 'wait', 'lock', 1, undefined, { group: 'a' }), 'queued');
  t.is(a1.position, 1, 'position inside its group');
  expectKind(await s.acquire(keys, id('a', 2), LIVENESS, 'wait', 'lock', 1, undefined, { group: 'a' }), 'queued');
  expectKind(await s.acquire(keys, id('b', 1), LIVENESS, 'wait', 'lock', 1, undefined, { group: 'b' }), 'queued');
  t.deepEqual(await keysOf(prefix), [
    `${keys.queue}`,
    `${keys.queue}:${groupHex('a')}`,
    `${keys.queue}:${groupHex('b')}`,
    `${keys.queue}:r`,
    keys.state,
  ].sort());
  const info = await s.inspect(keys, 10);
  t.deepEqual(info.groups.map((g) => g.group), ['', 'a', 'b'], 'the default group became active first');
  t.deepEqual(info.queue.map((e) => [e.id, e.group]), [[id('d'), ''], [id('a', 1), 'a'], [id('a', 2), 'a'], [id('b', 1), 'b']]);
  t.is(d.position, 1);
  const order: string[] = [];
  let holder = id('h');
  let last = h.token;
  for (let i = 0; i < 4; i++) {
    await s.release(keys, holder);
    const beat = (sid: string) => s.heartbeat(keys, sid, LIVENESS, { held: [] });
    const next = (await Promise.all(['d', 'a', 'b'].map(beat))).flatMap((r) => r.holders);
    t.is(next.length, 1, 'one holder at a time');
    t.true(next[0]!.token > last);
    last = next[0]!.token;
    holder = next[0]!.id;
    order.push(holder);
  }
  t.deepEqual(order, [id('d'), id('a', 1), id('b', 1), id('a', 2)]);
  await s.release(keys, holder);
  t.deepEqual(await keysOf(prefix), [keys.state], 'group lists, rotation and queue are gone');
  t.is(await fx.client.hGet(keys.state, 'g'), '', 'plain mode again');
});

test('a capped group is parked, holds nobody back, and returns to its place when one of its grants ends', async (t) => {
  const { s, keys, prefix } = setup();
  const acq = (sid: string, group: string, n = 1) => s.acquire(keys, id(sid, n), LIVENESS, 'wait', 'semaphore', 3, undefined, { group, perGroup: 1 });
  expectKind(await acq('x', 'x', 1), 'granted');
  expectKind(await acq('x', 'x', 2), 'queued');
  let info = await s.inspect(keys, 10);
  t.deepEqual(info.groups, [{ group: 'x', waiting: 1, parked: true }]);
  expectKind(await acq('y', 'y', 1), 'granted'); // passed over x
  expectKind(await acq('z', 'z', 1), 'granted');
  expectKind(await acq('y', 'y', 2), 'queued');
  info = await s.inspect(keys, 10);
  // parking is lazy: y is parked when it reaches the front with permits free, not while the name is full
  t.deepEqual(info.groups.map((g) => [g.group, g.parked]), [['x', true], ['y', false]]);
  await s.release(keys, id('x', 1));
  const beat = await s.heartbeat(keys, 'x', LIVENESS, { held: [] });
  t.deepEqual(beat.holders.map((h) => h.id), [id('x', 2)], "x's waiter took the permit x freed");
  info = await s.inspect(keys, 10);
  t.deepEqual(info.groups.map((g) => [g.group, g.parked]), [['y', false]], 'x left; y was never at the front with a permit free');
  await s.release(keys, id('y', 1));
  t.deepEqual((await s.heartbeat(keys, 'y', LIVENESS, { held: [] })).holders.map((h) => h.id), [id('y', 2)]);
  for (const h of [id('x', 2), id('y', 2), id('z', 1)]) await s.release(keys, h);
  t.deepEqual(await keysOf(prefix), [keys.state]);
});

test('cancel, a dropped waiter and a re-run find the waiter in its group list; an emptied group leaves the rotation', async (t) => {
  const { s, keys, prefix } = setup();
  expectKind(await s.acquire(keys, id('h'), LIVENESS, 'wait', 'lock', 1), 'granted');
  const q1 = expectKind(await s.acquire(keys, id('a', 1), LIVENESS, 'wait', 'lock', 1, undefined, { group: 'a' }), 'queued');
  const q2 = expectKind(await s.acquire(keys, id('b', 1), LIVENESS, 'wait', 'lock', 1, undefined, { group: 'b' }), 'queued');
  const again = expectKind(await s.acquire(keys, id('a', 1), LIVENESS, 'wait', 'lock', 1, { since: q1.since }, { group: 'a' }), 'queued');
  t.is(again.since, q1.since, 'the re-run found the element, not pushed another');
  t.is(await fx.client.lLen(`${keys.queue}:${groupHex('a')}`), 1);
  t.is((await s.cancel(keys, id('a', 1), q1.since, 'a')).kind, 'cancelled');
  t.deepEqual((await s.inspect(keys, 10)).groups.map((g) => g.group), ['b']);
  await s.heartbeat(keys, 'b', LIVENESS, { held: [], dropped: [{ id: id('b', 1), since: q2.since, group: 'b' }] });
  t.deepEqual((await s.inspect(keys, 10)).queue, []);
  const newest = await s.heartbeat(keys, 'c', LIVENESS, { held: [], newest: { id: id('c', 1), since: 1, group: 'c' } });
  t.true(newest.lapsed, 'a waiter Redis does not have in its group list is reported lost');
  await s.release(keys, id('h'));
  t.deepEqual(await keysOf(prefix), [keys.state]);
});

test('bad groups and a group on a read-write lock are refused by the engine too', async (t) => {
  const { s, keys } = setup();
  const raw = (group: string, kindLimit = 'lock 1') =>
    fx.client.sendCommand(['EVAL', 'return 1', '0']).then(() => s.acquire(keys, id('a'), LIVENESS, 'wait', kindLimit.split(' ')[0] as 'lock', Number(kindLimit.split(' ')[1]), undefined, { group }));
  await t.throwsAsync(raw('x', 'rw 0'), { code: 'INVALID_ARGUMENT' });
  await t.throwsAsync(s.acquire(keys, id('a'), LIVENESS, 'wait', 'semaphore', 2, undefined, { perGroup: 3 }), { code: 'INVALID_ARGUMENT' });
  await t.throwsAsync(s.acquire(keys, id('a', 1, 2), LIVENESS, 'wait', 'semaphore', 2, undefined, { perGroup: 1 }), { code: 'INVALID_ARGUMENT' });
  const hex = groupHex('é'.repeat(129)); // 258 bytes
  await t.throwsAsync(fx.client.sendCommand(['EVAL', 'return 1', '0']).then(() => s.cancel(keys, id('a'), undefined, 'x'.repeat(600))), { code: 'INVALID_ARGUMENT' });
  t.true(hex.length > 512);
});
