/**
 * A lease starts when its holder can know of it. A hand-off grant lives until the waiter session's
 * liveness deadline only until that session's first heartbeat (or acquire) confirms it: then a grant
 * the client names (it took the wake-up) ends at grant time + lease, one it does not name (wake-up
 * lost) at beat time + lease, and never at the liveness deadline. Every report of a grant carries
 * the deadline its holder may use.
 */
import test from 'ava';
import { FairLocks } from '../src/index.js';
import { lockKeys } from '../src/protocol/keys.js';
import { Scripts } from '../src/protocol/scripts.js';
import { adaptClient } from '../src/redis/adapt.js';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';
import { whenQueued } from './helpers/queued.js';
import { holdersAt, redisNow } from './helpers/state.js';

const fx = useRedis();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Redis time left on the holder entry of the lock in the state hash (the first one); -2 when there is none (as PTTL of a missing key). */
async function holderLeftMs(stateKey: string): Promise<number> {
  const [h] = await holdersAt(fx.client, stateKey);
  return h ? h.exp - (await redisNow(fx.client)) : -2;
}

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
  let pttl = await holderLeftMs(lockKeys(prefix, 's').state);
  for (let i = 0; i < 100 && pttl > 300; i++) {
    await sleep(20);
    pttl = await holderLeftMs(lockKeys(prefix, 's').state);
  }
  t.true(pttl <= 300, `Redis cut the grant back to grant time + lease once confirmed (${pttl} ms left)`);
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
  const s = new Scripts(adaptClient(fx.client), prefix);
  const keys = lockKeys(prefix, 'c');
  const now = async () => (await fx.client.time()).getTime();
  t.is((await s.acquire(keys, 'h:1:5000:1:1:x', 5_000, 'wait', 'lock', 1)).kind, 'granted');

  // Named (the client took the wake-up): cut back to grant time + lease.
  await s.acquire(keys, 'a:1:300:0:1:x', 5_000, 'wait', 'lock', 1);
  await s.release(keys, 'h:1:5000:1:1:x'); // hand-off to a:1, unconfirmed: lives until a's liveness deadline
  const grantedAt = await now();
  t.true((await holderLeftMs(keys.state)) > 3_000, 'unconfirmed: until the liveness deadline');
  await sleep(100);
  const named = await s.heartbeat(keys, 'a', 5_000, { held: ['a:1:300:0:1:x'] });
  t.is(named.holders[0]?.id, 'a:1:300:0:1:x');
  t.true(named.holders[0]!.exp <= grantedAt + 300 + 5, `named: grant time + lease (${named.holders[0]!.exp - grantedAt} ms after the grant)`);
  t.true((await holderLeftMs(keys.state)) <= 300 - 90);
  const again = await s.heartbeat(keys, 'a', 5_000, { held: ['a:1:300:0:1:x'] });
  t.is(again.holders[0]?.exp, named.holders[0]?.exp, 'not renewed (autoRenew off)');
  await s.release(keys, 'a:1:300:0:1:x');

  // Unnamed (the wake-up was lost): the lease starts at the beat that reports it, once.
  await s.acquire(keys, 'h:2:5000:1:1:x', 5_000, 'wait', 'lock', 1);
  await s.acquire(keys, 'b:1:300:0:1:x', 5_000, 'wait', 'lock', 1);
  await s.release(keys, 'h:2:5000:1:1:x');
  await sleep(400); // longer than the lease: cutting to grant time + lease would lose a healthy waiter's turn
  const unnamed = await s.heartbeat(keys, 'b', 5_000);
  t.is(unnamed.holders[0]?.id, 'b:1:300:0:1:x', 'still granted: the waiter learns it from this reply');
  t.is(unnamed.holders[0]!.exp - unnamed.now, 300, 'beat time + lease');
  await sleep(100);
  const second = await s.heartbeat(keys, 'b', 5_000);
  t.is(second.holders[0]?.exp, unnamed.holders[0]?.exp, 'confirmed once: later beats that do not name it do not renew it');
  await sleep(300);
  const gone = await s.heartbeat(keys, 'b', 5_000);
  t.deepEqual(gone.holders, [], 'it ran out a lease after the beat');

  // Named and auto-renewed: a full lease from the beat.
  await s.acquire(keys, 'h:3:5000:1:1:x', 5_000, 'wait', 'lock', 1);
  await s.acquire(keys, 'r:1:300:1:1:x', 5_000, 'wait', 'lock', 1);
  await s.release(keys, 'h:3:5000:1:1:x');
  const renewed = await s.heartbeat(keys, 'r', 5_000, { held: ['r:1:300:1:1:x'] });
  t.true(renewed.holders[0]!.exp - renewed.now === 300, 'renewed: beat time + lease');
  await s.release(keys, 'r:1:300:1:1:x');
});

test('an acquire that finds its own unconfirmed grant confirms it from now', async (t) => {
  const prefix = newPrefix();
  const s = new Scripts(adaptClient(fx.client), prefix);
  const keys = lockKeys(prefix, 'q');
  await s.acquire(keys, 'h:1:5000:1:1:x', 5_000, 'wait', 'lock', 1);
  await s.acquire(keys, 'w:1:300:0:1:x', 5_000, 'wait', 'lock', 1);
  await s.release(keys, 'h:1:5000:1:1:x');
  await sleep(400);
  const reply = await s.acquire(keys, 'w:1:300:0:1:x', 5_000, 'wait', 'lock', 1);
  t.is(reply.kind, 'granted');
  if (reply.kind === 'granted') t.is(reply.exp - reply.now, 300);
  t.true((await holderLeftMs(keys.state)) <= 300);
});
