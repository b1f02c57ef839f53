/**
 * The public API's everyday promises: using() and `await using` always release, reentrancy only inside
 * using() when asked for, inspect() shows holder, lease left and queue in order, close() ends waits and
 * leases but not the client, a lease that runs out aborts its signal, extend() and auto-renew keep a
 * lease alive, and bad input fails fast naming the argument.
 */
import test, { type ExecutionContext } from 'ava';
import { createClient } from 'redis';
import {
  ClosedError,
  FairLockError,
  FairLocks,
  InvalidArgumentError,
  LockLostError,
  LockTimeoutError,
  NotHolderError,
} from '../src/index.js';
import type { RedisClient } from './helpers/redis-client.js';
import { newPrefix } from './helpers/redis.js';
import { useRedis } from './helpers/fixture.js';
import { newLocks } from './helpers/cleanup.js';
import { whenQueued } from './helpers/queued.js';

const fx = useRedis();

const fresh = (t: ExecutionContext, options = {}) => newLocks(t, fx.client, { prefix: newPrefix(), ...options });

test('using() runs the function under the lock and always releases', async (t) => {
  const locks = fresh(t);
  const lock = locks.lock('u');
  const token = await lock.using(async (lease) => {
    t.deepEqual((await locks.inspect('u')).holder?.token, lease.token);
    return lease.token;
  });
  t.is(typeof token, 'number');
  t.is((await locks.inspect('u')).holder, null);
  await t.throwsAsync(lock.using(() => Promise.reject(new Error('boom'))), { message: 'boom' });
  t.is((await locks.inspect('u')).holder, null, 'released after the function threw');
  await locks.close();
});

test('await using releases at the end of the block', async (t) => {
  const locks = fresh(t);
  {
    await using lease = await locks.lock('d').acquire();
    t.is((await locks.inspect('d')).holder?.token, lease.token);
  }
  t.is((await locks.inspect('d')).holder, null);
  await locks.close();
});

test('reentrancy is opt-in and scoped to the using() callback', async (t) => {
  const locks = fresh(t);
  const lock = locks.lock('r');
  await lock.using(async (outer) => {
    const inner = await lock.acquire({ reentrant: true });
    t.is(inner.token, outer.token);
    await inner.release();
    t.is((await locks.inspect('r')).holder?.token, outer.token, 'the inner release keeps the lock');
    const nested = await lock.using(async (l) => l.token, { reentrant: true });
    t.is(nested, outer.token);
    // Without the flag, a nested acquire queues like anyone else (and here times out).
    await t.throwsAsync(lock.acquire({ timeoutMs: 100 }), { instanceOf: LockTimeoutError });
  });
  t.is((await locks.inspect('r')).holder, null, 'the outermost release released it');
  // Outside any using(), reentrant: true is an ordinary acquire.
  const held = await lock.acquire();
  await t.throwsAsync(lock.acquire({ reentrant: true, timeoutMs: 100 }), { instanceOf: LockTimeoutError });
  await held.release();
  await locks.close();
});

test('inspect shows the holder, the lease left and the queue in order', async (t) => {
  const locks = fresh(t);
  const lock = locks.lock('i');
  t.deepEqual(await locks.inspect('i'), { kind: undefined, limit: undefined, perGroup: undefined, available: undefined, holders: [], holder: null, queue: [], groups: [], recentReleases: [] });
  const lease = await lock.acquire({ leaseMs: 3_000 });
  const positions: number[] = [];
  const waits = [];
  for (let i = 0; i < 3; i++) {
    const q = whenQueued();
    waits.push(lock.acquire({ onQueued: q.onQueued }));
    positions.push(await q.queued);
  }
  const info = await locks.inspect('i');
  t.is(info.holder?.id, lease.id);
  t.is(info.holder?.token, lease.token);
  t.true(info.holder!.leaseLeftMs > 2_000 && info.holder!.leaseLeftMs <= 3_000);
  t.deepEqual(info.queue.map((q) => q.position), [1, 2, 3]);
  t.deepEqual(positions, [1, 2, 3]);
  t.true(info.queue[0]!.waitedMs >= info.queue[2]!.waitedMs);
  await lease.release();
  for (const w of waits) await (await w).release();
  await locks.close();
});

test('close() rejects waits with ClosedError, releases leases and leaves the client open', async (t) => {
  const prefix = newPrefix();
  const other = newLocks(t, fx.client, { prefix });
  const locks = newLocks(t, fx.client, { prefix });
  const held = await locks.lock('c1').acquire();
  const blocker = await other.lock('c2').acquire();
  const q = whenQueued();
  const waiting = locks.lock('c2').acquire({ onQueued: q.onQueued });
  await q.queued;
  await locks.close();
  await t.throwsAsync(waiting, { instanceOf: ClosedError });
  t.true(held.signal.aborted === false, 'a released lease is not a lost one');
  t.is((await other.inspect('c1')).holder, null, 'its lease was released');
  t.deepEqual((await other.inspect('c2')).queue, [], 'its waiter left the queue');
  t.throws(() => locks.lock('x'), { instanceOf: ClosedError });
  await t.throwsAsync(locks.inspect('x'), { instanceOf: ClosedError });
  t.is(await fx.client.ping(), 'PONG');
  await blocker.release();
  await other.close();
});

test('a lease that runs out aborts its signal with LockLostError; release then rejects', async (t) => {
  const locks = fresh(t);
  const lease = await locks.lock('l').acquire({ leaseMs: 100, autoRenew: false });
  let lostEvent: Error | undefined;
  locks.on('lost', (_l, err) => (lostEvent = err));
  await new Promise((r) => setTimeout(r, 150));
  t.true(lease.signal.aborted);
  t.true(lease.signal.reason instanceof LockLostError);
  t.true(lostEvent instanceof LockLostError);
  await t.throwsAsync(lease.release(), { instanceOf: LockLostError });
  await t.throwsAsync(lease.extend(), { instanceOf: LockLostError });
  await locks.close();
});

test('extend() keeps an unrenewed lease alive; auto-renew keeps a short lease alive', async (t) => {
  // Leases several times their renewal period, so a loaded machine's late timers do not lose them.
  const locks = fresh(t, { heartbeatMs: 100, livenessMs: 400 });
  const manual = await locks.lock('e1').acquire({ leaseMs: 3_000, autoRenew: false });
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 1_200));
    await manual.extend();
  }
  t.false(manual.signal.aborted, 'kept by extend() past its first lease');
  await manual.release();
  const auto = await locks.lock('e2').acquire({ leaseMs: 1_500 });
  await new Promise((r) => setTimeout(r, 3_500));
  t.false(auto.signal.aborted, 'renewed by the heartbeat');
  t.true((await locks.inspect('e2')).holder!.leaseLeftMs > 0);
  await auto.release();
  await auto.release(); // a second release is harmless
  await t.throwsAsync(auto.extend(), { instanceOf: NotHolderError });
  await locks.close();
});

test('bad input fails fast with errors that name the argument', async (t) => {
  const unconnected = createClient({ url: fx.server.url });
  t.throws(() => new FairLocks(unconnected as unknown as RedisClient), { instanceOf: InvalidArgumentError, message: /connected/ });
  t.throws(() => new FairLocks(undefined as unknown as RedisClient), { instanceOf: InvalidArgumentError, message: /client/ });
  for (const [options, name] of [
    [{ leaseMs: -1 }, 'leaseMs'],
    [{ leaseMs: Number.NaN }, 'leaseMs'],
    [{ heartbeatMs: Number.POSITIVE_INFINITY }, 'heartbeatMs'],
    [{ livenessMs: 100, heartbeatMs: 80 }, 'livenessMs'],
    [{ prefix: '' }, 'prefix'],
    [{ prefix: 'a{b}' }, 'prefix'],
  ] as const) {
    t.throws(() => new FairLocks(fx.client, options), { instanceOf: InvalidArgumentError, message: new RegExp(name) });
  }
  const locks = fresh(t);
  t.throws(() => locks.lock(''), { instanceOf: InvalidArgumentError, message: /name/ });
  t.throws(() => locks.lock(42 as unknown as string), { instanceOf: InvalidArgumentError, message: /name/ });
  const lock = locks.lock('b');
  for (const [options, name] of [
    [{ timeoutMs: -5 }, 'timeoutMs'],
    [{ timeoutMs: Number.NaN }, 'timeoutMs'],
    [{ timeoutMs: Number.POSITIVE_INFINITY }, 'timeoutMs'],
    [{ timeoutMs: 2 ** 31 }, 'timeoutMs'], // a Node timer would fire at once
    [{ leaseMs: 2 ** 31 }, 'leaseMs'],
    [{ leaseMs: 0 }, 'leaseMs'],
    [{ signal: {} }, 'signal'],
    [{ onQueued: 3 }, 'onQueued'],
    [{ autoRenew: 'yes' }, 'autoRenew'],
  ] as const) {
    await t.throwsAsync(lock.acquire(options as never), { instanceOf: InvalidArgumentError, message: new RegExp(name) });
  }
  await t.throwsAsync(locks.inspect(''), { instanceOf: InvalidArgumentError });
  const lease = await lock.acquire();
  await t.throwsAsync(lease.extend(-1), { instanceOf: InvalidArgumentError, message: /ms/ });
  await lease.release();
  await locks.close();
  await t.throwsAsync(lock.acquire(), { instanceOf: ClosedError });
  await t.throwsAsync(lock.tryAcquire(), { instanceOf: ClosedError });
  t.true(new ClosedError() instanceof FairLockError);
});
