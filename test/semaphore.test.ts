/**
 * The fair counting semaphore's own rules, beside the shared property suite (test/properties/):
 * the worked example of the grant rule, the limit carried by each acquire, and bad input.
 */
import test from 'ava';
import { InvalidArgumentError, LimitMismatchError } from '../src/index.js';
import { newLocks } from './helpers/cleanup.js';
import { useRedis } from './helpers/fixture.js';
import { whenQueued } from './helpers/queued.js';
import { newPrefix } from './helpers/redis.js';

const fx = useRedis();

test('permits 3, queue A(2) B(2) C(1): A at once; C waits behind B though it fits; A released: B and C together, B first', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const sem = locks.semaphore('jobs', { permits: 3 });
  const a = await sem.acquire({ weight: 2 });
  t.is(a.weight, 2);
  t.is(a.kind, 'semaphore');
  const qb = whenQueued();
  const b = sem.acquire({ weight: 2, onQueued: qb.onQueued });
  t.is(await qb.queued, 1);
  const qc = whenQueued();
  const c = sem.acquire({ weight: 1, onQueued: qc.onQueued });
  t.is(await qc.queued, 2, 'C queues behind B although 2 + 1 <= 3');
  let info = await locks.inspect('jobs');
  t.is(info.kind, 'semaphore');
  t.is(info.limit, 3);
  t.is(info.available, 1);
  t.deepEqual(info.holders.map((h) => h.weight), [2]);
  t.deepEqual(info.queue.map((w) => w.weight), [2, 1]);
  await a.release();
  const [lb, lc] = await Promise.all([b, c]);
  t.true(lb.token < lc.token, 'B before C');
  t.true(lb.token > a.token);
  info = await locks.inspect('jobs');
  t.deepEqual(info.holders.map((h) => h.id), [lb.id, lc.id]);
  t.is(info.available, 0);
  await lb.release();
  await lc.release();
  t.is((await locks.inspect('jobs')).available, 3);
});

test('weight and permits are checked at once, for acquire and tryAcquire alike', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const sem = locks.semaphore('s', { permits: 2 });
  for (const weight of [3, 0, -1, 1.5, Number.NaN, '1' as unknown as number]) {
    await t.throwsAsync(sem.acquire({ weight }), { instanceOf: InvalidArgumentError }, `acquire weight ${String(weight)}`);
    await t.throwsAsync(sem.tryAcquire({ weight }), { instanceOf: InvalidArgumentError }, `tryAcquire weight ${String(weight)}`);
  }
  const e = await t.throwsAsync(sem.acquire({ weight: 3 }));
  t.regex(e!.message, /weight \(3\) is more than the semaphore's permits \(2\)/);
  for (const permits of [0, -2, 2.5, undefined, '3' as unknown as number]) {
    t.throws(() => locks.semaphore('s', { permits: permits as number }), { instanceOf: InvalidArgumentError }, `permits ${String(permits)}`);
  }
  t.throws(() => locks.semaphore('s', undefined as never), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(locks.lock('l').acquire({ weight: 1 } as never), { instanceOf: InvalidArgumentError, message: /semaphores only/ });
  await t.throwsAsync(locks.readWrite('rw').read().acquire({ weight: 1 } as never), { instanceOf: InvalidArgumentError });
});

test('a busy name keeps its kind and limit (LIMIT_MISMATCH names both); an idle one takes the new ones', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const held = await locks.semaphore('n', { permits: 3 }).acquire();
  const e = await t.throwsAsync(locks.semaphore('n', { permits: 2 }).acquire(), { instanceOf: LimitMismatchError });
  t.is(e!.code, 'LIMIT_MISMATCH');
  t.is((e as LimitMismatchError).current, 'semaphore 3');
  t.is((e as LimitMismatchError).requested, 'semaphore 2');
  t.regex(e!.message, /semaphore of 3 permits.*semaphore of 2 permits/);
  await t.throwsAsync(locks.semaphore('n', { permits: 2 }).tryAcquire(), { instanceOf: LimitMismatchError });
  await t.throwsAsync(locks.lock('n').acquire({ timeoutMs: 0 }), { instanceOf: LimitMismatchError, message: /a lock/ });
  await t.throwsAsync(locks.readWrite('n').write().acquire(), { instanceOf: LimitMismatchError, message: /read-write lock/ });
  t.is((await locks.inspect('n')).queue.length, 0, 'a refused request never queues');
  const same = await locks.semaphore('n', { permits: 3 }).acquire({ weight: 2 });
  await same.release();
  await held.release();
  // Idle now: any kind may take it.
  const l = await locks.lock('n').acquire();
  t.is((await locks.inspect('n')).kind, 'lock');
  await l.release();
  const s2 = await locks.semaphore('n', { permits: 2 }).acquire({ weight: 2 });
  t.is((await locks.inspect('n')).limit, 2);
  await s2.release();
});

test('using() and reentrancy on a semaphore: the nested lease shares the grant and takes no more permits', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const sem = locks.semaphore('u', { permits: 2 });
  await sem.using(async (outer) => {
    const inner = await sem.acquire({ reentrant: true });
    t.is(inner.token, outer.token);
    t.is((await locks.inspect('u')).available, 1);
    await inner.release();
    t.true(outer.held);
  });
  t.is((await locks.inspect('u')).available, 2);
});
