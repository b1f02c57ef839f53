/**
 * A wait that times out or is aborted leaves the queue with the typed error (LockTimeoutError,
 * LockAbortedError carrying the reason) and the waiter behind is granted next; a timeout racing the grant
 * never leaves the lock stuck; a timed-out acquire waited at least its timeoutMs.
 */
import test from 'ava';
import { LockAbortedError, LockTimeoutError } from '../src/index.js';
import { newPrefix } from './helpers/redis.js';
import { useRedis } from './helpers/fixture.js';
import { newLocks } from './helpers/cleanup.js';
import { whenQueued } from './helpers/queued.js';

const fx = useRedis();

test('a waiter that times out leaves the queue and the one behind it is granted next', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const lock = locks.lock('x');
  const holder = await lock.acquire();
  const a = whenQueued();
  const timedOut = lock.acquire({ timeoutMs: 300, onQueued: a.onQueued });
  await a.queued;
  const b = whenQueued();
  const behind = lock.acquire({ onQueued: b.onQueued });
  await b.queued;
  const err = await t.throwsAsync(timedOut, { instanceOf: LockTimeoutError });
  t.is(err?.code, 'LOCK_TIMEOUT');
  const info = await locks.inspect('x');
  t.is(info.queue.length, 1, 'only the waiter behind is left');
  await holder.release();
  const lease = await behind;
  t.true(lease.token > holder.token);
  await lease.release();
  await locks.close();
});

test('an aborted waiter leaves the queue with LockAbortedError carrying the reason', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const lock = locks.lock('x');
  const holder = await lock.acquire();
  const controller = new AbortController();
  const a = whenQueued();
  const aborted = lock.acquire({ signal: controller.signal, onQueued: a.onQueued });
  await a.queued;
  const reason = new Error('no longer needed');
  controller.abort(reason);
  const err = await t.throwsAsync(aborted, { instanceOf: LockAbortedError });
  t.is(err?.cause, reason);
  t.deepEqual((await locks.inspect('x')).queue, []);
  // An already aborted signal fails before any Redis call.
  await t.throwsAsync(lock.acquire({ signal: AbortSignal.abort() }), { instanceOf: LockAbortedError });
  await holder.release();
  t.is((await locks.inspect('x')).holder, null);
  await locks.close();
});

test('a timeout racing the grant never leaves the lock stuck (many rounds)', async (t) => {
  const prefix = newPrefix();
  const holderSide = newLocks(t, fx.client, { prefix });
  const waiterSide = newLocks(t, fx.client, { prefix });
  const rounds = 150;
  let granted = 0;
  let timedOut = 0;
  for (let i = 0; i < rounds; i++) {
    const name = `race${i % 5}`;
    const holder = await holderSide.lock(name).acquire();
    const q = whenQueued();
    const waiting = waiterSide.lock(name).acquire({ timeoutMs: 5 + (i % 7), onQueued: q.onQueued });
    const outcome = waiting.then(
      (l) => l,
      (e: unknown) => e,
    );
    // Release around the moment the timeout fires: sometimes before, sometimes after.
    await new Promise((r) => setTimeout(r, i % 9));
    await holder.release();
    const result = await outcome;
    if (result instanceof LockTimeoutError) timedOut++;
    else {
      granted++;
      await (result as { release(): Promise<void> }).release();
    }
    // Whatever happened, the lock must be free right now for a third party.
    const probe = await holderSide.lock(name).tryAcquire();
    t.truthy(probe, `round ${i}: lock stuck after ${result instanceof Error ? 'timeout' : 'grant'}`);
    await probe?.release();
  }
  t.is(granted + timedOut, rounds);
  t.log(`granted ${granted}, timed out ${timedOut}`);
  await holderSide.close();
  await waiterSide.close();
});

/**
 * Proves a call never gives up before its timeoutMs: Node may fire a timer a little early against
 * performance.now() (its loop's cached time lags), and the README's events example once printed a
 * 'timeout' with waitedMs < timeoutMs. Measured in this one process: the rejection and the event.
 */
test('an acquire that times out waited at least its timeoutMs, by the call and by its timeout event', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix() });
  const lock = locks.lock('t');
  const holder = await lock.acquire();
  const waited: number[] = [];
  locks.on('timeout', (e) => waited.push(e.waitedMs));
  const timeoutMs = 15;
  const calls = Array.from({ length: 40 }, async () => {
    const started = performance.now();
    await t.throwsAsync(lock.acquire({ timeoutMs }), { instanceOf: LockTimeoutError });
    return performance.now() - started;
  });
  const took = await Promise.all(calls);
  t.is(waited.length, 40);
  t.true(Math.min(...took) >= timeoutMs, `every call took ${timeoutMs} ms or more (shortest ${Math.min(...took).toFixed(2)} ms)`);
  t.true(Math.min(...waited) >= timeoutMs, `every event says ${timeoutMs} ms or more (shortest ${Math.min(...waited).toFixed(2)} ms)`);
  await holder.release();
});
