/**
 * A lease is told of its loss on its local deadline even when Node fires the deadline timer early
 * (timers run up to ~1 ms early by performance.now()): every timer of 100 ms or more here fires 60 ms
 * early and no heartbeat comes first, so only the re-armed deadline timer can abort the holder's signal.
 */
import test from 'ava';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';
import { newLocks } from './helpers/cleanup.js';

const fx = useRedis();

test.serial('a deadline timer that Node fires early is armed again: the signal aborts once the deadline has passed', async (t) => {
  const locks = newLocks(t, fx.client, { prefix: newPrefix(), heartbeatMs: 4_000, livenessMs: 12_000 });
  const lost: unknown[] = [];
  locks.on('lost', (e) => lost.push(e));
  const realSetTimeout = globalThis.setTimeout;
  const early = ((fn: (...a: unknown[]) => void, ms?: number, ...rest: unknown[]) =>
    realSetTimeout(fn, typeof ms === 'number' && ms >= 100 ? ms - 60 : ms, ...rest)) as typeof setTimeout;
  globalThis.setTimeout = early;
  let lease;
  try {
    lease = await locks.lock('d').acquire({ leaseMs: 400, autoRenew: false });
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  // The signal's `aborted` getter reads the clock itself: only the 'abort' event (and the 'lost'
  // event) show whether the timer told the holder.
  const signal = lease.signal;
  const started = performance.now();
  const told = await new Promise<boolean>((resolve) => {
    const check = realSetTimeout(() => resolve(false), 1_500); // bounded: well before the first beat (4 s)
    signal.addEventListener('abort', () => (clearTimeout(check), resolve(true)), { once: true });
  });
  t.true(told, `the signal's abort event fired (waited ${Math.round(performance.now() - started)} ms)`);
  t.is(lost.length, 1, "one 'lost' event, before anything read the clock");
  t.is((signal.reason as { code?: string }).code, 'LOCK_LOST');
  await t.throwsAsync(lease.release(), { code: 'LOCK_LOST' } as never);
});
