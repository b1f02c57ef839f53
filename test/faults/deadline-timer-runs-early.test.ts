/**
 * A lease's deadline timer that runs before the lease's clock reaches the deadline (Node's timers run up
 * to ~1 ms early by performance.now()) is armed again, so a holder cut off from Redis still has its
 * signal aborted. The lease's clock is held just short of the deadline while the timer runs, forcing
 * that order on any machine.
 */
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { newPrefix, startRedis, type RedisServer } from '../helpers/redis.js';
import { within } from '../helpers/bounded.js';
import { newLocks, openClient } from '../helpers/cleanup.js';
import { cutAllBut } from '../helpers/partition.js';
import { whenAborted } from '../helpers/queued.js';

// A long lease: the machine may stall between the last renewal and the cut without losing it.
const OPTS = { leaseMs: 3000, livenessMs: 3000, heartbeatMs: 150, driftFactor: 0.2 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let server: RedisServer;
test.before(async () => {
  server = await startRedis({ owned: true }); // CONFIG SET maxclients: a server of our own
});
test.after.always(async () => {
  await server?.stop();
});

test('a deadline timer that runs before the lease clock reaches the deadline is armed again: the cut-off holder still aborts', async (t) => {
  const prefix = newPrefix();
  const admin = await within(openClient(t, server.url), 20_000, 'open admin');
  const client = await within(openClient(t, server.url), 20_000, 'open client');
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const lease = await within(locks.lock('e').acquire(), 20_000, 'acquire');
  await sleep(2 * OPTS.heartbeatMs); // a few renewals went through

  // Only the admin connection may stay: cut the others and refuse their reconnects (no renewal gets through).
  const cut = await cutAllBut(t, admin);

  // Listen now: reading `aborted` (or `held`, `remainingMs`) compares with the clock by itself, and
  // after the clock goes on only the timer may find the loss.
  let clockHeld = false;
  let abortedWhileHeld = false;
  const aborted = whenAborted(lease.signal).then((reason) => {
    abortedWhileHeld = clockHeld;
    return reason;
  });
  const realNow = performance.now;
  const before = realNow.call(performance);
  const remaining = lease.remainingMs; // read once, before the clock is held
  t.true(remaining > 0, 'the lease is still held at the cut');
  // Hold the clock 1 ms short of the deadline (deadline >= before + remaining) until the timer has run.
  clockHeld = true;
  const heldAt = before + remaining - 1;
  performance.now = () => heldAt;
  try {
    await sleep(remaining + 300); // the deadline timer (Node's own clock) ran meanwhile
  } finally {
    clockHeld = false;
    performance.now = realNow;
  }
  const reason = await within(aborted, 3_000, 'the abort after the clock went on');
  t.false(abortedWhileHeld, 'not aborted while the lease clock was short of the deadline');
  t.is((reason as { code?: string }).code, 'LOCK_LOST');

  await cut.heal();
  await t.throwsAsync(within(lease.release(), 20_000, 'the release'), { code: 'LOCK_LOST' } as never);
  await within(locks.close(), 20_000, 'close');
});
