/**
 * src/clock.ts on a fake clock: a Redis deadline becomes a local one no later than it can pass
 * (ClockBound), and atDeadline never runs its function before the deadline, even when the timer
 * under it fires early (as Node's do by up to a millisecond).
 */
import test from 'ava';
import { atDeadline, ClockBound, monotonic } from '../../src/clock.js';
import { FairLockError } from '../../src/errors.js';
import { installClock, type FakeClock } from './fake-clock.js';

let clock: FakeClock;
test.beforeEach(() => {
  clock = installClock();
});
test.afterEach.always(() => clock.uninstall());

test.serial('a Redis time becomes local time minus the offset the reply proves (its now minus its sentAt)', (t) => {
  const bound = new ClockBound();
  // Sent at local 100, stamped 5_000 by Redis: Redis is at most 4_900 ms ahead.
  t.is(bound.toLocal(6_000, { now: 5_000, sentAt: 100 }), 1_100);
});

test.serial('without a sample of its own, a Redis time uses the last reply observed', (t) => {
  const bound = new ClockBound();
  t.throws(() => bound.toLocal(1), { instanceOf: FairLockError, message: /no clock sample/ });
  bound.observe({ now: 5_000, sentAt: 100 });
  bound.observe({ now: 5_000, sentAt: 200 });
  t.is(bound.toLocal(6_000), 1_200);
});

test.serial('atDeadline runs once the deadline is reached, and not before', async (t) => {
  let ran = 0;
  atDeadline(monotonic() + 10.5, () => ran++);
  await clock.tick(10);
  t.is(ran, 0);
  await clock.tick(1);
  t.is(ran, 1);
  await clock.tick(100);
  t.is(ran, 1, 'once');
});

test.serial('a timer that fires early waits out the rest instead of running before the deadline', async (t) => {
  const setTimer = globalThis.setTimeout;
  let early = true; // the first timer fires 1 ms early, as Node's sometimes do
  globalThis.setTimeout = ((fn: () => void, ms: number) => setTimer(fn, early ? ((early = false), ms - 1) : ms)) as typeof setTimeout;
  try {
    let ranAt: number | undefined;
    const deadline = monotonic() + 10;
    atDeadline(deadline, () => (ranAt = monotonic()));
    await clock.tick(9);
    t.is(ranAt, undefined, 'the early timer re-armed');
    await clock.tick(1);
    t.is(ranAt, deadline);
  } finally {
    globalThis.setTimeout = setTimer;
  }
});

test.serial('a cancelled deadline never runs', async (t) => {
  let ran = false;
  atDeadline(monotonic() + 5, () => (ran = true)).cancel();
  await clock.tick(50);
  t.false(ran);
  t.is(clock.pending(), 0);
});
