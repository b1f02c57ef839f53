/**
 * A lease starts when its holder can know of it. A hand-off grant lives until the waiter session's
 * liveness deadline only until that session's first heartbeat (or acquire) confirms it: then a grant
 * the client names (it took the wake-up) ends at grant time + lease, one it does not name (wake-up
 * lost) at beat time + lease, and never at the liveness deadline. Every report of a grant carries
 * the deadline its holder may use.
 */
import test from 'ava';
import { FairLocks } from '../src/index.js';
import { lockKeys } from '../src/keys.js';
import { Scripts } from '../src/scripts.js';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';
import { whenQueued } from './helpers/queued.js';

const fx = useRedis();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a { leaseMs: 300, autoRenew: false } lease granted by a hand-off frees the lock about 300 ms later, not at the liveness deadline', async (t) => {
  const prefix = newPrefix();
  const opts = { prefix, heartbeatMs: 100, livenessMs: 5_000 };
  const [a, b, c] = [new FairLocks(fx.client, opts), new FairLocks(fx.client, opts), new FairLocks(fx.client, opts)];
  t.teardown(() => Promise.all([a.close(), b.close(), c.close()]).then(() => undefined));
  const holder = await a.lock('s').acquire();
  const queued = () => {
    let done!: () => void;
    return { p: new Promise<void>((r) => (done = r)), done: () => done() };
  };
  const qb = whenQueued();
  const short = b.lock('s').acquire({ leaseMs: 300, autoRenew: false, onQueued: qb.onQueued });
  await qb.queued;
  const qc = whenQueued();
  const next = c.lock('s').acquire({ timeoutMs: 20_000, onQueued: qc.onQueued });
  await qc.queued;
  await holder.release();
  const lease = await short;
  const grantedAt = performance.now();
  t.true(lease.remainingMs <= 300, `the holder is told at most its lease (${lease.remainingMs} ms)`);
  // b's first heartbeat (every 100 ms) confirms the grant: Redis then cuts it back to grant time +
  // lease, where it was the liveness deadline (5 s) before. Or the lease ran out and b released it.
  let pttl = await fx.client.pTTL(lockKeys(prefix, 's').owner);
  for (let i = 0; i < 100 && pttl > 300; i++) {
    await sleep(20);
    pttl = await fx.client.pTTL(lockKeys(prefix, 's').owner);
  }
  t.true(pttl <= 300, `Redis cut the grant back to grant time + lease once confirmed (PTTL ${pttl} ms)`);
  t.true(lease.remainingMs <= 300, `the client did not move its deadline out (${lease.remainingMs} ms left)`);
  const after = await next; // b never releases: its lease must run out by itself
  const waited = performance.now() - grantedAt;
  t.log(`the next waiter was granted ${waited.toFixed(0)} ms after the 300 ms lease was granted`);
  t.true(waited < 3_500, `within about one lease (plus a loaded machine's slack), below the 5 s liveness (${waited.toFixed(0)} ms)`);
  t.true(lease.signal.aborted, 'the short lease knows it is over');
  t.true(after.token > lease.token);
  await after.release();
});

test('heartbeat confirmation: a named grant ends at grant time + lease, an unnamed one at beat time + lease, once', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(fx.client, prefix);
  const keys = lockKeys(prefix, 'c');
  const now = async () => (await fx.client.time()).getTime();
  t.is((await s.acquire(keys, 'h:1:5000:1', 5_000, 'wait')).kind, 'granted');

  // Named (the client took the wake-up): cut back to grant time + lease.
  await s.acquire(keys, 'a:1:300:0', 5_000, 'wait');
  await s.release(keys, 'h:1:5000:1'); // hand-off to a:1, unconfirmed: lives until a's liveness deadline
  const grantedAt = await now();
  t.true((await fx.client.pTTL(keys.owner)) > 3_000, 'unconfirmed: until the liveness deadline');
  await sleep(100);
  const named = await s.heartbeat(keys, 'a', 5_000, ['a:1:300:0']);
  t.is(named.owner?.id, 'a:1:300:0');
  t.true(named.owner!.exp <= grantedAt + 300 + 5, `named: grant time + lease (${named.owner!.exp - grantedAt} ms after the grant)`);
  t.true((await fx.client.pTTL(keys.owner)) <= 300 - 90);
  const again = await s.heartbeat(keys, 'a', 5_000, ['a:1:300:0']);
  t.is(again.owner?.exp, named.owner?.exp, 'not renewed (autoRenew off)');
  await s.release(keys, 'a:1:300:0');

  // Unnamed (the wake-up was lost): the lease starts at the beat that reports it, once.
  await s.acquire(keys, 'h:2:5000:1', 5_000, 'wait');
  await s.acquire(keys, 'b:1:300:0', 5_000, 'wait');
  await s.release(keys, 'h:2:5000:1');
  await sleep(400); // longer than the lease: cutting to grant time + lease would lose a healthy waiter's turn
  const unnamed = await s.heartbeat(keys, 'b', 5_000);
  t.is(unnamed.owner?.id, 'b:1:300:0', 'still granted: the waiter learns it from this reply');
  t.is(unnamed.owner!.exp - unnamed.now, 300, 'beat time + lease');
  await sleep(100);
  const second = await s.heartbeat(keys, 'b', 5_000);
  t.is(second.owner?.exp, unnamed.owner?.exp, 'confirmed once: later beats that do not name it do not renew it');
  await sleep(300);
  const gone = await s.heartbeat(keys, 'b', 5_000);
  t.is(gone.owner, null, 'it ran out a lease after the beat');

  // Named and auto-renewed: a full lease from the beat.
  await s.acquire(keys, 'h:3:5000:1', 5_000, 'wait');
  await s.acquire(keys, 'r:1:300:1', 5_000, 'wait');
  await s.release(keys, 'h:3:5000:1');
  const renewed = await s.heartbeat(keys, 'r', 5_000, ['r:1:300:1']);
  t.true(renewed.owner!.exp - renewed.now === 300, 'renewed: beat time + lease');
  await s.release(keys, 'r:1:300:1');
});

test('an acquire that finds its own unconfirmed grant confirms it from now', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(fx.client, prefix);
  const keys = lockKeys(prefix, 'q');
  await s.acquire(keys, 'h:1:5000:1', 5_000, 'wait');
  await s.acquire(keys, 'w:1:300:0', 5_000, 'wait');
  await s.release(keys, 'h:1:5000:1');
  await sleep(400);
  const reply = await s.acquire(keys, 'w:1:300:0', 5_000, 'wait');
  t.is(reply.kind, 'granted');
  if (reply.kind === 'granted') t.is(reply.exp - reply.now, 300);
  t.true((await fx.client.pTTL(keys.owner)) <= 300);
});
