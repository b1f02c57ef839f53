/**
 * The fair read-write lock's own rules, beside the shared suite (test/properties/): readers hold
 * together, a queued writer holds back later readers, downgrade inside using() works, and
 * write-inside-read (a deadlock) is refused.
 */
import test from 'ava';
import { WouldDeadlockError } from '../src/index.js';
import { newLocks } from './helpers/cleanup.js';
import { useRedis } from './helpers/fixture.js';
import { whenQueued } from './helpers/queued.js';
import { newPrefix } from './helpers/redis.js';

const fx = useRedis();

test('adjacent readers are granted together; readers queued behind a writer wait for it', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const rw = locks.readWrite('doc');
  const r1 = await rw.read().acquire();
  const r2 = await rw.read().acquire();
  t.is(r1.mode, 'read');
  t.is(r1.kind, 'rw');
  const qw = whenQueued();
  const w = rw.write().acquire({ onQueued: qw.onQueued });
  await qw.queued;
  const qr = whenQueued();
  const r3 = rw.read().acquire({ onQueued: qr.onQueued });
  t.is(await qr.queued, 2, 'a reader does not pass the queued writer');
  t.is(await rw.read().tryAcquire(), null, 'nor does tryAcquire');
  const info = await locks.inspect('doc');
  t.is(info.kind, 'rw');
  t.deepEqual(info.holders.map((h) => h.mode), ['read', 'read']);
  t.deepEqual(info.queue.map((q) => q.mode), ['write', 'read']);
  await r1.release();
  await r2.release();
  const lw = await w;
  t.is(lw.mode, 'write');
  t.deepEqual((await locks.inspect('doc')).queue.map((q) => q.mode), ['read'], 'the reader waits for the writer');
  await lw.release();
  const lr = await r3;
  t.true(lr.token > lw.token && lw.token > r2.token);
  await lr.release();
});

test('inside a write\'s using(), a read returns at once (downgrade); inside a read\'s, a write is refused', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const rw = locks.readWrite('x');
  await rw.write().using(async (w) => {
    const r = await rw.read().acquire({ timeoutMs: 1_000 });
    t.is(r.mode, 'read');
    t.is(r.token, w.token, 'covered by the write');
    await r.release();
    t.true(w.held, 'the write is still held');
  });
  await rw.read().using(async () => {
    const e = await t.throwsAsync(rw.write().acquire(), { instanceOf: WouldDeadlockError });
    t.is(e!.code, 'WOULD_DEADLOCK');
    await t.throwsAsync(rw.write().tryAcquire(), { instanceOf: WouldDeadlockError });
  });
  t.is((await locks.inspect('x')).holders.length, 0);
});
