/**
 * Fair share between groups (DESIGN §7) on one real Redis: the rotation, FIFO inside a group, the
 * perGroup cap that passes a group over without stalling others, no barging by tryAcquire, what
 * inspect() and the events report, the limits and bad input, and that groups leave no keys behind.
 * Order is read from fencing tokens (one Redis, one counter), never from clocks.
 */
import test from 'ava';
import { FairLockError, InvalidArgumentError, LimitMismatchError, type Lease } from '../src/index.js';
import { newLocks } from './helpers/cleanup.js';
import { useRedis } from './helpers/fixture.js';
import { whenQueued } from './helpers/queued.js';
import { newPrefix } from './helpers/redis.js';

const fx = useRedis();

/**
 * Queues one request; resolves once Redis has it queued (or granted it at once) with `{ lease }`, the
 * promise of its grant (wrapped: an async function's returned promise would be awaited).
 */
async function queue(acquire: (onQueued: (p: number) => void) => Promise<Lease>): Promise<{ lease: Promise<Lease> }> {
  const q = whenQueued();
  const lease = acquire(q.onQueued);
  await Promise.race([q.queued, lease]);
  return { lease };
}

async function keysOf(prefix: string): Promise<string[]> {
  return (await fx.client.keys(`${prefix}:*`)).sort();
}

test('groups take turns on a lock in the order they became active; FIFO inside each', async (t) => {
  const prefix = newPrefix();
  const locks = newLocks(t, fx.client, { prefix });
  const lock = locks.lock('deploy');
  const first = await lock.acquire();
  const order: string[] = [];
  const asks: [string, string][] = [['x', 'x1'], ['x', 'x2'], ['x', 'x3'], ['y', 'y1'], ['y', 'y2'], ['z', 'z1']];
  const pending: Promise<Lease>[] = [];
  for (const [group, label] of asks) {
    const p = (await queue((onQueued) => lock.acquire({ group, onQueued }))).lease;
    pending.push(
      p.then(async (l) => {
        order.push(label);
        t.is(l.group, group);
        await l.release();
        return l;
      }),
    );
  }
  const info = await locks.inspect('deploy');
  t.deepEqual(info.groups.map((g) => [g.group, g.held, g.waiting]), [['x', 0, 3], ['y', 0, 2], ['z', 0, 1], [undefined, 1, 0]]);
  t.deepEqual(info.queue.map((w) => [w.group, w.position]), [['x', 1], ['x', 2], ['x', 3], ['y', 1], ['y', 2], ['z', 1]]);
  await first.release();
  const leases = await Promise.all(pending);
  t.deepEqual(order, ['x1', 'y1', 'z1', 'x2', 'y2', 'x3']);
  const byToken = [...leases].sort((a, b) => a.token - b.token).map((l) => asks[leases.indexOf(l)]![1]);
  t.deepEqual(byToken, order, 'tokens follow the rotation');
  t.deepEqual(await keysOf(prefix), [`${prefix}:{deploy}:state`], 'no group, rotation or queue key is left behind');
});

test('requests without a group form the default group: queued before any group, it takes the first turn', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const lock = locks.lock('n');
  const first = await lock.acquire();
  const order: string[] = [];
  const track = (label: string) => (l: Lease) => {
    order.push(label);
    return l.release();
  };
  const d1 = (await queue((onQueued) => lock.acquire({ onQueued }))).lease.then(track('d1'));
  const d2 = (await queue((onQueued) => lock.acquire({ onQueued }))).lease.then(track('d2'));
  const a1 = (await queue((onQueued) => lock.acquire({ group: 'a', onQueued }))).lease.then(track('a1'));
  const a2 = (await queue((onQueued) => lock.acquire({ group: 'a', onQueued }))).lease.then(track('a2'));
  const d3 = (await queue((onQueued) => lock.acquire({ onQueued }))).lease.then(track('d3'));
  await first.release();
  await Promise.all([d1, d2, a1, a2, d3]);
  t.deepEqual(order, ['d1', 'a1', 'd2', 'a2', 'd3']);
});

test('no group anywhere: strict FIFO exactly as before, and no group key is written', async (t) => {
  const prefix = newPrefix();
  const locks = newLocks(t, fx.client, { prefix });
  const sem = locks.semaphore('s', { permits: 2 });
  const held = [await sem.acquire(), await sem.acquire()];
  const order: number[] = [];
  const pending: Promise<void>[] = [];
  for (let i = 0; i < 5; i++) {
    pending.push((await queue((onQueued) => sem.acquire({ onQueued }))).lease.then(async (l) => {
      order.push(i);
      await l.release();
    }));
  }
  t.deepEqual(await keysOf(prefix), [`${prefix}:{s}:queue`, `${prefix}:{s}:state`]);
  t.is((await fx.client.hGet(`${prefix}:{s}:state`, 'g')) ?? '', '');
  for (const l of held) await l.release();
  await Promise.all(pending);
  t.deepEqual(order, [0, 1, 2, 3, 4]);
});

test('a group that took its turn, emptied and queues again at once waits behind the groups still waiting (no second turn in a row)', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const lock = locks.lock('r');
  const h0 = await lock.acquire({ group: 'z' });
  const y1 = (await queue((onQueued) => lock.acquire({ group: 'y', onQueued }))).lease;
  const y2 = (await queue((onQueued) => lock.acquire({ group: 'y', onQueued }))).lease;
  const x1 = (await queue((onQueued) => lock.acquire({ group: 'x', onQueued }))).lease;
  await h0.release();
  await (await y1).release();
  const l2 = await x1; // x's list is empty now: it left the rotation
  const x2 = (await queue((onQueued) => lock.acquire({ group: 'x', onQueued }))).lease; // and rejoins while x1 holds
  t.deepEqual((await locks.inspect('r')).groups.map((g) => [g.group, g.waiting]), [['y', 1], ['x', 1]]);
  await l2.release();
  const first = await Promise.race([y2.then(() => 'y2'), x2.then(() => 'x2')]);
  t.is(first, 'y2', 'y2, backlogged all along, before x2');
  const a = await y2;
  await a.release();
  const b = await x2;
  t.true(b.token > a.token);
  await b.release();
});

test('perGroup: a group at its cap is passed over without holding others back, and keeps its place', async (t) => {
  const prefix = newPrefix();
  const locks = newLocks(t, fx.client, { prefix });
  const sem = locks.semaphore('gpu', { permits: 4, perGroup: 2 });
  const a1 = await sem.acquire({ group: 'a' });
  const a2 = await sem.acquire({ group: 'a' });
  // a is at its cap: its next request waits although permits are free
  const a3 = (await queue((onQueued) => sem.acquire({ group: 'a', onQueued }))).lease;
  let info = await locks.inspect('gpu');
  t.is(info.perGroup, 2);
  t.is(info.available, 2);
  t.deepEqual(info.groups.map((g) => [g.group, g.held, g.waiting, g.capped]), [['a', 2, 1, true]]);
  // b is not held back by a's waiter
  const b1 = await sem.acquire({ group: 'b', timeoutMs: 5_000 });
  const b2 = await sem.acquire({ group: 'b', timeoutMs: 5_000 });
  t.is(b1.group, 'b');
  const b3 = (await queue((onQueued) => sem.acquire({ group: 'b', onQueued }))).lease;
  const c1 = (await queue((onQueued) => sem.acquire({ group: 'c', onQueued }))).lease;
  info = await locks.inspect('gpu');
  t.is(info.available, 0);
  t.deepEqual(info.groups.map((g) => [g.group, g.waiting]), [['a', 1], ['c', 1], ['b', 1]], 'a kept its place at the front; c, which had no turn yet, is before b, which had two');
  // one of b's ends: a is still capped and passed over; the turn is c's
  await b1.release();
  const l3 = await c1;
  t.is(l3.group, 'c');
  // one of a's ends: a is back at its place (the front), and takes the permit before b
  await a1.release();
  const l4 = await a3;
  t.is(l4.group, 'a');
  t.true(l4.token > l3.token);
  await Promise.all([a2.release(), b2.release(), l3.release()]);
  const l5 = await b3;
  t.is(l5.group, 'b');
  await Promise.all([l4.release(), l5.release()]);
  t.deepEqual(await keysOf(prefix), [`${prefix}:{gpu}:state`]);
});

test('a head that does not fit the free permits stops every group (no starvation of a big request)', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const sem = locks.semaphore('s', { permits: 3 });
  const h = await sem.acquire({ weight: 2 });
  const big = (await queue((onQueued) => sem.acquire({ group: 'a', weight: 3, onQueued }))).lease;
  let smallGranted = false;
  const small = (await queue((onQueued) => sem.acquire({ group: 'b', weight: 1, onQueued }))).lease.then((l) => {
    smallGranted = true;
    return l;
  });
  await new Promise((r) => setTimeout(r, 200));
  t.false(smallGranted, "b's small request waits behind a's big head, whose turn it is");
  await h.release();
  const lb = await big;
  t.is(lb.weight, 3);
  await lb.release();
  const ls = await small;
  t.true(ls.token > lb.token);
  await ls.release();
});

test('tryAcquire({ group }) never barges: null while anyone at all is queued, even with permits free for its group', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const sem = locks.semaphore('s', { permits: 3, perGroup: 1 });
  const a1 = await sem.tryAcquire({ group: 'a' });
  t.truthy(a1);
  t.is(a1!.group, 'a');
  const a2 = (await queue((onQueued) => sem.acquire({ group: 'a', onQueued }))).lease; // parked at a's cap
  t.is(await sem.tryAcquire({ group: 'b' }), null, 'a waiter is queued (parked): no barging');
  await t.throwsAsync(sem.acquire({ group: 'b', timeoutMs: 0 }), { code: 'LOCK_TIMEOUT' });
  const b = await sem.acquire({ group: 'b', timeoutMs: 5_000 });
  t.is(b.group, 'b');
  await a1!.release();
  const l2 = await a2;
  await Promise.all([l2.release(), b.release()]);
  const c = await sem.tryAcquire({ group: 'c' });
  t.truthy(c, 'nobody queued, fits: granted');
  await c!.release();
});

test('events and leases carry the group; nested leases report the outer group', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const seen: [string, string | undefined][] = [];
  locks.on('queued', (e) => seen.push(['queued', e.group]));
  locks.on('granted', (e) => seen.push(['granted', e.group]));
  locks.on('released', (e) => seen.push(['released', e.group]));
  const lock = locks.lock('e');
  const first = await lock.acquire({ group: 'g1' });
  const second = (await queue((onQueued) => lock.acquire({ group: 'g2', onQueued }))).lease;
  await first.release();
  await (await second).release();
  await lock.using(async (lease) => {
    const nested = await lock.acquire({ reentrant: true });
    t.is(nested.group, 'g3');
    t.is(lease.group, 'g3');
    await nested.release();
  }, { group: 'g3' });
  // g2's grant comes by wake-up on the subscriber's connection, g1's release reply on the command
  // connection: either may be read first (CI, Node 24 beside the soak), so those two are compared as a pair.
  const handOff = seen.slice(2, 4).map((e) => e.join(' ')).sort();
  t.deepEqual(handOff, ['granted g2', 'released g1']);
  t.deepEqual([...seen.slice(0, 2), ...seen.slice(4)], [
    ['granted', 'g1'],
    ['queued', 'g2'],
    ['released', 'g2'],
    ['granted', 'g3'],
    ['released', 'g3'],
  ]);
});

test('groups are any UTF-8 string up to 256 bytes (spaces, braces, ";", emoji) and are refused otherwise', async (t) => {
  const prefix = newPrefix();
  const locks = newLocks(t, fx.client, { prefix });
  const lock = locks.lock('odd');
  const odd = ['a b', '{x}', 'semi;colon', '🙂'.repeat(64), '\u0000nul', 'é'.repeat(128)];
  const first = await lock.acquire({ group: odd[0] });
  const pending = [];
  for (const group of odd.slice(1)) pending.push((await queue((onQueued) => lock.acquire({ group, onQueued }))).lease);
  const info = await locks.inspect('odd');
  t.deepEqual(info.groups.map((g) => g.group), [...odd.slice(1), odd[0]]);
  await first.release();
  for (const p of pending) {
    const l = await p;
    t.true(odd.includes(l.group!));
    await l.release();
  }
  for (const bad of ['', 'x'.repeat(257), '🙂'.repeat(65), 'lone \ud800', 5, null, {}]) {
    await t.throwsAsync(lock.acquire({ group: bad as string }), { instanceOf: InvalidArgumentError });
    await t.throwsAsync(lock.tryAcquire({ group: bad as string }), { instanceOf: InvalidArgumentError });
  }
  t.deepEqual(await keysOf(prefix), [`${prefix}:{odd}:state`]);
});

test('limits: group on a read-write lock, perGroup out of range, weight above perGroup are refused; another perGroup while busy is LIMIT_MISMATCH', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const rw = locks.readWrite('rw');
  await t.throwsAsync(rw.read().acquire({ group: 'a' }), { instanceOf: InvalidArgumentError, message: /read-write/ });
  await t.throwsAsync(rw.write().tryAcquire({ group: 'a' }), { instanceOf: InvalidArgumentError });
  for (const perGroup of [0, -1, 1.5, 4, Number.NaN, '2']) {
    t.throws(() => locks.semaphore('s', { permits: 3, perGroup: perGroup as number }), { instanceOf: InvalidArgumentError });
  }
  const sem = locks.semaphore('s', { permits: 3, perGroup: 2 });
  t.is(sem.perGroup, 2);
  await t.throwsAsync(sem.acquire({ weight: 3 }), { instanceOf: InvalidArgumentError, message: /perGroup/ });
  const held = await sem.acquire({ group: 'a' });
  const e = await t.throwsAsync(locks.semaphore('s', { permits: 3, perGroup: 1 }).acquire({ group: 'a' }), { instanceOf: LimitMismatchError });
  t.is(e!.current, 'semaphore 3 2');
  t.is(e!.requested, 'semaphore 3 1');
  t.regex(e!.message, /at most 2 per group/);
  await t.throwsAsync(locks.semaphore('s', { permits: 3 }).acquire(), { instanceOf: LimitMismatchError });
  await held.release();
  // idle again: a new cap is taken
  const again = await locks.semaphore('s', { permits: 3, perGroup: 1 }).acquire({ group: 'b' });
  t.true(again.held);
  await again.release();
  t.true(e instanceof FairLockError);
});
