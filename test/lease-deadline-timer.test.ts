/**
 * Proves a lease is told of its loss on its local deadline even when Node fires the deadline timer
 * early (by performance.now(), Node's timers run up to ~1 ms early: whole ms of the loop clock, the
 * delay truncated). The lease then found "not passed yet" and never looked again: a holder cut off from Redis (no beat reply to read the clock) kept an
 * unaborted signal for as long as the cut lasted (test/faults/partition.test.ts hung 20 s once).
 * Here every timer of 100 ms or more fires 60 ms early while the lease is granted, and no heartbeat
 * comes before the check: only the deadline timer can tell the holder.
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
