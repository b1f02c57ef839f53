/**
 * A holder hung past its lease learns of the loss as soon as it looks after resuming, while the next
 * waiter already holds the lock; a waiter hung past its liveness (even one granted while hung) re-enters
 * the queue on resuming and is granted, never waiting forever.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnChild, stopAll, type Child } from '../helpers/children.js';
import { newLocks, openClient } from '../helpers/cleanup.js';
import { newPrefix } from '../helpers/redis.js';
import type { Event } from '../helpers/worker.js';
import { useRedis } from '../helpers/fixture.js';

const OPTS = { leaseMs: 400, livenessMs: 600, heartbeatMs: 150 };
const fx = useRedis();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const token = (e: Event) => (e.ev === 'granted' ? e.token : NaN);

async function spawn(t: ExecutionContext, n: number, options = OPTS): Promise<Child[]> {
  return Promise.all(Array.from({ length: n }, () => spawnChild(t, fx.server.url, prefix, options)));
}
let prefix = newPrefix();

test.serial('a holder SIGSTOPped past its lease sees its signal aborted right after SIGCONT; the next waiter got the lock meanwhile', async (t) => {
  prefix = newPrefix();
  const [holder, waiter] = await spawn(t, 2);
  holder!.send({ op: 'acquire', req: 'h', name: 'L' });
  const h = await holder!.expect('h', 'granted');
  waiter!.send({ op: 'acquire', req: 'w', name: 'L', timeoutMs: 20_000 });
  await waiter!.expect('w', 'queued');

  holder!.signal('SIGSTOP');
  const stoppedAt = Date.now();
  const w = await waiter!.expect('w', 'granted', 10_000);
  t.true(token(w) > token(h), 'the next waiter holds a higher token');
  // Keep the holder stopped past its lease for sure, queue a check, then resume it.
  await sleep(Math.max(0, 2 * OPTS.leaseMs - (Date.now() - stoppedAt)));
  holder!.send({ op: 'check', req: 'h' });
  holder!.signal('SIGCONT');
  const checked = await holder!.expect('h', 'checked');
  t.true(checked.ev === 'checked' && checked.aborted, 'signal.aborted is true when read right after resume');
  await holder!.expect('h', 'lost');

  // The waiter still holds it: the resumed stale holder did not take it back.
  waiter!.send({ op: 'check', req: 'w' });
  const wc = await waiter!.expect('w', 'checked');
  t.false(wc.ev === 'checked' && wc.aborted);
  holder!.send({ op: 'release', req: 'h' });
  await holder!.waitFor((e) => e.req === 'h' && (e.ev === 'error' || e.ev === 'released'));
  const rel = holder!.events.find((e) => e.req === 'h' && (e.ev === 'error' || e.ev === 'released'))!;
  t.true(rel.ev === 'error' && (rel.code === 'LOCK_LOST' || rel.code === 'NOT_HOLDER'), 'release after loss rejects');
  waiter!.send({ op: 'release', req: 'w' });
  await waiter!.expect('w', 'released');
  await stopAll([holder!, waiter!]);
});

test.serial('in process: signal.aborted reads the clock, so a blocked event loop sees the loss before any timer runs', async (t) => {
  const p = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix: p, ...OPTS });
  const lease = await locks.lock('busy').acquire();
  t.false(lease.signal.aborted);
  const until = Date.now() + OPTS.leaseMs * 2;
  while (Date.now() < until) {
    // a synchronous stall, like a long GC pause: no timer or heartbeat can run
  }
  t.true(lease.signal.aborted);
  t.throws(() => lease.signal.throwIfAborted(), { code: 'LOCK_LOST' } as never);
  await t.throwsAsync(lease.release(), { code: 'LOCK_LOST' } as never);
  await locks.close();
  await client.quit();
});

test.serial('a waiter SIGSTOPped past its liveness is skipped, then re-enters on SIGCONT and is granted', async (t) => {
  prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const holder = await locks.lock('W').acquire({ leaseMs: 10_000 }); // not the point here: long, so a loaded machine cannot lose it
  const [a, b] = await spawn(t, 2);
  a!.send({ op: 'acquire', req: 'a', name: 'W', timeoutMs: 20_000 });
  await a!.expect('a', 'queued');
  b!.send({ op: 'acquire', req: 'b', name: 'W', timeoutMs: 20_000 });
  await b!.expect('b', 'queued');

  a!.signal('SIGSTOP');
  await sleep(OPTS.livenessMs + 3 * OPTS.heartbeatMs); // a's liveness ran out
  await holder.release();
  const gb = await b!.expect('b', 'granted', 5_000);
  t.false(a!.events.some((e) => e.ev === 'granted'), 'the hung waiter was skipped');
  b!.send({ op: 'release', req: 'b' });
  await b!.expect('b', 'released');
  // The lock is now free and nobody is queued: a must get it once it runs again.
  const resumedAt = Date.now();
  a!.signal('SIGCONT');
  const ga = await a!.expect('a', 'granted', 5_000);
  t.true(token(ga) > token(gb));
  t.log(`re-entered and granted ${Date.now() - resumedAt} ms after SIGCONT`);
  a!.send({ op: 'release', req: 'a' });
  await a!.expect('a', 'released');
  t.deepEqual((await locks.inspect('W')).holder, null);
  await locks.close();
  await client.quit();
  await stopAll([a!, b!]);
});

test.serial('a waiter granted while SIGSTOPped: the grant runs out at its liveness, the next waiter gets it, and on SIGCONT it re-enters and is granted later', async (t) => {
  prefix = newPrefix();
  const client = await openClient(t, fx.server.url);
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const holder = await locks.lock('G').acquire({ leaseMs: 10_000 }); // not the point here: long, so a loaded machine cannot lose it
  // lease > liveness, so the grant to the hung waiter is capped by its liveness, not its lease.
  const [a, b] = await spawn(t, 2, { leaseMs: 2000, livenessMs: 800, heartbeatMs: 150 });
  a!.send({ op: 'acquire', req: 'a', name: 'G', timeoutMs: 20_000 });
  await a!.expect('a', 'queued');
  b!.send({ op: 'acquire', req: 'b', name: 'G', timeoutMs: 20_000 });
  await b!.expect('b', 'queued');

  a!.signal('SIGSTOP');
  await holder.release(); // a is still live in Redis: the grant goes to a, lasting only until a's liveness deadline
  const info = await locks.inspect('G');
  t.true(info.holder?.id.startsWith(a!.sessionId), 'the hung waiter was granted');
  t.true(info.holder!.leaseLeftMs <= 800, 'an unconfirmed grant lasts no longer than its liveness');
  const gb = await b!.expect('b', 'granted', 5_000);
  // Keep a hung until well after b holds, with b still holding; then resume it while b holds.
  await sleep(2 * OPTS.heartbeatMs);
  a!.signal('SIGCONT');
  await sleep(3 * OPTS.heartbeatMs);
  t.false(a!.events.some((e) => e.ev === 'granted'), 'the stale grant was not taken as a lease while b holds');
  b!.send({ op: 'release', req: 'b' });
  await b!.expect('b', 'released');
  const ga = await a!.expect('a', 'granted', 5_000);
  t.true(token(ga) > token(gb), 'a holds a fresh grant, after b');
  a!.send({ op: 'release', req: 'a' });
  await a!.expect('a', 'released');
  await locks.close();
  await client.quit();
  await stopAll([a!, b!]);
});

test.serial('a holder paused past its liveness but within its lease keeps the lock: owner validity is the lease only', async (t) => {
  prefix = newPrefix();
  const opts = { leaseMs: 3000, livenessMs: 600, heartbeatMs: 150 };
  const [holder, waiter] = await spawn(t, 2, opts);
  holder!.send({ op: 'acquire', req: 'h', name: 'V' });
  await holder!.expect('h', 'granted');
  waiter!.send({ op: 'acquire', req: 'w', name: 'V', timeoutMs: 20_000 });
  await waiter!.expect('w', 'queued');
  holder!.signal('SIGSTOP');
  await sleep(opts.livenessMs + 4 * opts.heartbeatMs); // its session looks dead; its lease does not
  holder!.send({ op: 'check', req: 'h' });
  holder!.signal('SIGCONT');
  const c = await holder!.expect('h', 'checked');
  t.false(c.ev === 'checked' && c.aborted, 'the holder still holds');
  await sleep(3 * opts.heartbeatMs);
  t.false(waiter!.events.some((e) => e.ev === 'granted'), 'nobody else was granted meanwhile');
  t.false(holder!.events.some((e) => e.ev === 'lost'));
  holder!.send({ op: 'release', req: 'h' });
  await holder!.expect('h', 'released');
  await waiter!.expect('w', 'granted', 5_000);
  waiter!.send({ op: 'release', req: 'w' });
  await waiter!.expect('w', 'released');
  await stopAll([holder!, waiter!]);
});
