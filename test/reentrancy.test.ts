/**
 * A nested acquire never resolves a lease for less than it asked: one of another kind or limit is
 * refused (LIMIT_MISMATCH), one heavier than the scope's grant too (INVALID_ARGUMENT naming both weights);
 * a write inside write.using -> read.using is a nested write; a read nested without `reentrant` is an
 * ordinary acquire that waits behind a writer queued in between.
 */
import test from 'ava';
import { InvalidArgumentError, LimitMismatchError, LockTimeoutError, WouldDeadlockError, type Lease } from '../src/index.js';
import { newLocks } from './helpers/cleanup.js';
import { useRedis } from './helpers/fixture.js';
import { whenQueued } from './helpers/queued.js';
import { newPrefix } from './helpers/redis.js';

const fx = useRedis();

test('a reentrant acquire of another kind or limit than its using() scope holds is refused with LIMIT_MISMATCH', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const leases: Lease[] = []; // anything wrongly granted is released at the end, so the test cannot hang
  const keep = (l: Lease | null) => (l ? leases.push(l) : undefined);
  await locks.lock('X').using(async (outer) => {
    const sem = locks.semaphore('X', { permits: 5 });
    const e = await t.throwsAsync(sem.acquire({ reentrant: true, weight: 4 }).then(keep), { instanceOf: LimitMismatchError });
    t.is(e!.code, 'LIMIT_MISMATCH');
    t.is((e as LimitMismatchError).current, 'lock 1');
    t.is((e as LimitMismatchError).requested, 'semaphore 5');
    await t.throwsAsync(sem.tryAcquire({ reentrant: true, weight: 4 }).then(keep), { instanceOf: LimitMismatchError });
    await t.throwsAsync(sem.using((l) => keep(l), { reentrant: true }), { instanceOf: LimitMismatchError });
    await t.throwsAsync(locks.readWrite('X').read().acquire({ reentrant: true, timeoutMs: 1_000 }).then(keep), { instanceOf: LimitMismatchError });
    await t.throwsAsync(locks.readWrite('X').write().acquire({ reentrant: true, timeoutMs: 1_000 }).then(keep), { instanceOf: LimitMismatchError });
    t.true(outer.held);
    t.deepEqual((await locks.inspect('X')).holders.map((h) => h.token), [outer.token], 'nothing else was granted');
  });
  await locks.semaphore('S', { permits: 3 }).using(async (outer) => {
    await t.throwsAsync(locks.semaphore('S', { permits: 4 }).acquire({ reentrant: true, timeoutMs: 1_000 }).then(keep), {
      instanceOf: LimitMismatchError,
      message: /semaphore of 3 permits.*semaphore of 4 permits/,
    });
    await t.throwsAsync(locks.lock('S').acquire({ reentrant: true, timeoutMs: 1_000 }).then(keep), { instanceOf: LimitMismatchError });
    t.true(outer.held);
  });
  await locks.readWrite('R').write().using(async () => {
    await t.throwsAsync(locks.lock('R').tryAcquire({ reentrant: true }).then(keep), { instanceOf: LimitMismatchError });
  });
  await Promise.all(leases.map((l) => l.release().catch(() => undefined)));
  t.is(leases.length, 0, 'no lease was resolved');
});

test('a reentrant acquire heavier than its using() scope is refused naming both weights; a lighter one is nested', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const sem = locks.semaphore('P', { permits: 3 });
  const leases: Lease[] = [];
  const keep = (l: Lease | null) => (l ? leases.push(l) : undefined);
  await sem.using(async (outer) => {
    t.is(outer.weight, 1);
    const e = await t.throwsAsync(sem.acquire({ reentrant: true, weight: 3 }).then(keep), { instanceOf: InvalidArgumentError });
    t.is(e!.code, 'INVALID_ARGUMENT');
    t.regex(e!.message, /3 permits/);
    t.regex(e!.message, /holds 1/);
    await t.throwsAsync(sem.tryAcquire({ reentrant: true, weight: 2 }).then(keep), { instanceOf: InvalidArgumentError });
    await t.throwsAsync(sem.using((l) => keep(l), { reentrant: true, weight: 2 }), { instanceOf: InvalidArgumentError });
    t.is((await locks.inspect('P')).available, 2, 'no permit was taken or lent');
    const same = await sem.acquire({ reentrant: true, weight: 1 });
    t.is(same.token, outer.token);
    t.is(same.weight, 1);
    await same.release();
  });
  await sem.using(
    async (outer) => {
      const inner = await sem.tryAcquire({ reentrant: true, weight: 1 });
      t.is(inner?.token, outer.token);
      t.is(inner?.weight, 1, 'a nested lease says what it covers: what it asked for, never less');
      const all = await sem.using(async (l) => [l.token, l.weight], { reentrant: true, weight: 2 });
      t.deepEqual(all, [outer.token, 2]);
      t.is((await locks.inspect('P')).available, 1, 'nested leases take no permits');
    },
    { weight: 2 },
  );
  await Promise.all(leases.map((l) => l.release().catch(() => undefined)));
  t.is(leases.length, 0, 'no lease was resolved');
  t.is((await locks.inspect('P')).available, 3);
});

test('inside write.using -> read.using, the scope holds the write: a write is nested, a read too; inside a plain read a write is refused', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const rw = locks.readWrite('W');
  await rw.write().using(async (w) => {
    await rw.read().using(async (r) => {
      t.is(r.mode, 'read');
      const nw = await rw.write().acquire({ reentrant: true, timeoutMs: 1_000 });
      t.is(nw.mode, 'write');
      t.is(nw.token, w.token);
      t.true(nw.held);
      await nw.release();
      const nr = await rw.read().acquire({ timeoutMs: 1_000 }); // a downgrade: the write covers it
      t.is(nr.token, w.token);
      t.is(nr.mode, 'read');
      await nr.release();
      t.is(await rw.write().using((l) => l.mode, { reentrant: true }), 'write');
    });
    t.true(w.held);
  });
  await rw.read().using(async (r) => {
    const nr = await rw.read().acquire({ reentrant: true });
    t.is(nr.token, r.token);
    t.is(nr.mode, 'read');
    await t.throwsAsync(rw.write().acquire({ reentrant: true }), { instanceOf: WouldDeadlockError });
    await t.throwsAsync(rw.write().tryAcquire(), { instanceOf: WouldDeadlockError });
  });
  t.is((await locks.inspect('W')).holders.length, 0);
});

test('a read nested in read().using() without reentrant waits behind a writer queued in between (as a nested plain acquire queues)', async (t) => {
  const prefix = newPrefix();
  const locks = newLocks(t, fx.client, { prefix });
  const other = newLocks(t, fx.client, { prefix }); // the writer: another session, outside the scope
  const rw = locks.readWrite('N');
  let spawned: Promise<Lease> | undefined;
  let writer: Promise<Lease> | undefined;
  await rw.read().using(async (outer) => {
    const qw = whenQueued();
    writer = other.readWrite('N').write().acquire({ onQueued: qw.onQueued, timeoutMs: 20_000 });
    t.is(await qw.queued, 1);
    // Awaited inside the scope, a plain nested read waits for the writer, which waits for this scope's read.
    await t.throwsAsync(rw.read().acquire({ timeoutMs: 300 }), { instanceOf: LockTimeoutError });
    t.deepEqual((await locks.inspect('N')).queue.map((q) => q.mode), ['write'], 'the timed-out read left the queue');
    // reentrant: true is the way to share the scope's read.
    const nested = await rw.read().acquire({ reentrant: true, timeoutMs: 1_000 });
    t.is(nested.token, outer.token);
    await nested.release();
    // A task started in the scope and not awaited by it (the async context flows into it) takes its
    // own read, after the writer, once the scope has ended: why a nested plain read is not refused.
    spawned = rw.read().acquire({ timeoutMs: 20_000 });
  });
  const w = await writer!;
  await w.release();
  const r = await spawned!;
  t.is(r.mode, 'read');
  t.true(r.token > w.token, 'the spawned read was granted after the writer queued before it');
  await r.release();
});
