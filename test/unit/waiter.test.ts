/**
 * Waiter, the one path from the acquire script to a lease, on a fake clock with a scripted fake
 * host (no Redis): a wake-up that beats the enqueue reply is kept, a grant that ran out unseen is
 * asked for again, giving up waits for the enqueue reply before it cancels, a durable grant is
 * released when too few replicas confirm it, and a 'try' (tryAcquire, timeoutMs 0) never queues.
 */
import test from 'ava';
import { Waiter } from '../../src/client/waiter.js';
import { LimitMismatchError, LockAbortedError, LockTimeoutError, NotReplicatedError, FairLockError } from '../../src/errors.js';
import { installClock, type FakeClock } from './fake-clock.js';
import { acquireOptions, FakeHost, LOCK, queued, TOKEN } from './fake-host.js';

const ID = 'sess:1:1000:1:1:x';
let clock: FakeClock;
test.beforeEach(() => {
  clock = installClock();
});
test.afterEach.always(() => clock.uninstall());

/** An acquire reply that granted at once, with a lease of `ms` from now. */
const granted = (ms = 1_000) => ({ kind: 'granted', token: TOKEN, exp: clock.now() + ms });

/** Whether `p` has settled by now (after the pending promise jobs ran). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  await clock.flush();
  return done;
}

function start(host: FakeHost, options = acquireOptions(), mode: 'wait' | 'try' = 'wait'): Waiter {
  const waiter = new Waiter(host, ID, options, LOCK, mode);
  void waiter.enqueue();
  return waiter;
}

test.serial('an immediate grant resolves with a lease and is reported granted once', async (t) => {
  const host = new FakeHost();
  const waiter = start(host);
  host.scripts.next('acquire').reply(granted());
  const lease = await waiter.promise;
  t.is(lease?.token, TOKEN);
  t.true(host.leases.has(lease!), 'the lease is tracked by its host');
  t.deepEqual(host.events.names(), ['granted']);
});

test.serial('a wake-up that arrives before the enqueue reply is kept and applied once the reply says queued', async (t) => {
  const host = new FakeHost();
  const waiter = start(host);
  waiter.grant({ token: TOKEN, exp: clock.now() + 1_000 }); // the wake-up outran the reply
  t.false(await settled(waiter.promise), 'nothing is taken before the reply');
  host.scripts.next('acquire').reply(queued());
  const lease = await waiter.promise;
  t.is(lease?.token, TOKEN);
  t.is(host.scripts.count('acquire'), 1, 'no second acquire');
  t.deepEqual(host.events.names(), ['queued', 'granted']);
});

test.serial('a grant whose deadline already passed makes the waiter ask Redis again instead of taking it', async (t) => {
  const host = new FakeHost();
  const waiter = start(host);
  host.scripts.next('acquire').reply(queued());
  await clock.flush();
  waiter.grant({ token: TOKEN, exp: clock.now() - 1, sample: { now: clock.now(), sentAt: clock.now() } });
  await clock.flush();
  t.is(host.scripts.count('acquire'), 2, 'the acquire script runs again');
  t.false(await settled(waiter.promise));
  host.scripts.next('acquire').reply(granted());
  t.is((await waiter.promise)?.token, TOKEN);
});

test.serial('giving up during the enqueue waits for its reply, then cancels, then rejects with the reason', async (t) => {
  const host = new FakeHost();
  const waiter = start(host);
  const gaveUp = waiter.giveUp(new LockTimeoutError('timed out'));
  await clock.flush();
  t.is(host.scripts.count('cancel'), 0, 'no cancel before the enqueue reply (it could overtake the enqueue)');
  host.scripts.next('acquire').reply(queued());
  await clock.flush();
  host.scripts.next('cancel').reply({ kind: 'cancelled' });
  await gaveUp;
  await t.throwsAsync(waiter.promise, { instanceOf: LockTimeoutError });
  t.deepEqual(host.events.names(), ['timeout'], 'a wait given up before the reply is never reported queued');
});

test.serial('a cancel that Redis does not answer at once rejects the caller after CANCEL_GRACE_MS; the cancel lands later', async (t) => {
  const host = new FakeHost();
  const waiter = start(host);
  host.scripts.next('acquire').reply(queued());
  await clock.flush();
  const gaveUp = waiter.giveUp(new LockAbortedError('aborted'));
  await clock.tick(Waiter.CANCEL_GRACE_MS - 1);
  t.false(await settled(gaveUp), 'a cancel answered within the grace is waited for');
  await clock.tick(1);
  await gaveUp;
  await t.throwsAsync(waiter.promise, { instanceOf: LockAbortedError });
  t.deepEqual(host.events.names(), ['queued', 'aborted']);
  t.is(host.cancels.length, 1);
  t.false(await settled(host.cancels[0]!), 'the cancel is still out, known to the host (close() waits for it)');
  host.scripts.next('cancel').reply({ kind: 'cancelled' });
  await clock.flush();
  t.true(await settled(host.cancels[0]!));
});

test.serial('giving up during an enqueue Redis holds: the caller hears after the grace; the cancel follows the reply', async (t) => {
  const host = new FakeHost();
  const waiter = start(host);
  const gaveUp = waiter.giveUp(new LockTimeoutError('timed out'));
  await clock.tick(Waiter.CANCEL_GRACE_MS);
  await gaveUp;
  await t.throwsAsync(waiter.promise, { instanceOf: LockTimeoutError });
  t.is(host.scripts.count('cancel'), 0, 'no cancel before the enqueue reply');
  host.scripts.next('acquire').reply(queued());
  await clock.flush();
  host.scripts.next('cancel').reply({ kind: 'cancelled' });
  await clock.flush();
  t.true(await settled(host.cancels[0]!));
  t.deepEqual(host.events.names(), ['timeout'], 'the reply that came after the give-up reports nothing');
});

test.serial('a durable grant that too few replicas confirm is released and rejects NotReplicatedError', async (t) => {
  const host = new FakeHost();
  const waiter = start(host, acquireOptions({ durability: { replicas: 2, timeoutMs: 100 } }));
  host.scripts.next('acquire').reply(granted());
  await clock.flush();
  host.scripts.next('confirm').reply({ acked: 1, holds: true });
  const err = await t.throwsAsync(waiter.promise, { instanceOf: NotReplicatedError });
  t.like(err, { acked: 1, required: 2 });
  await clock.flush();
  t.is(host.scripts.next('release').args[0], ID, 'the grant is released');
  t.false(host.events.names().includes('granted'), 'never reported granted');
});

test.serial('a durable grant confirmed on enough replicas resolves and is reported granted once', async (t) => {
  const host = new FakeHost();
  const waiter = start(host, acquireOptions({ durability: { replicas: 1, timeoutMs: 100 } }));
  host.scripts.next('acquire').reply(granted());
  await clock.flush();
  t.false(await settled(waiter.promise), 'not before the replicas confirm');
  host.scripts.next('confirm').reply({ acked: 1, holds: true });
  t.is((await waiter.promise)?.token, TOKEN);
  t.deepEqual(host.events.names(), ['granted']);
});

test.serial('giving up while a durable grant is confirmed rejects at once, drops the WAIT and releases the grant', async (t) => {
  const host = new FakeHost();
  const waiter = start(host, acquireOptions({ durability: { replicas: 1, timeoutMs: 100 } }));
  host.scripts.next('acquire').reply(granted());
  await clock.flush();
  const confirm = host.scripts.next('confirm');
  const rejected = t.throwsAsync(waiter.promise, { instanceOf: LockAbortedError });
  const gaveUp = waiter.giveUp(new LockAbortedError('aborted'));
  await rejected; // before the release is answered
  t.true((confirm.args[2] as AbortSignal).aborted, 'the WAIT is dropped');
  host.scripts.next('release').reply({ kind: 'released' });
  await gaveUp;
});

test.serial("a 'try' that finds the name busy resolves null and leaves nothing queued", async (t) => {
  const host = new FakeHost();
  const waiter = start(host, acquireOptions(), 'try');
  t.is(host.scripts.next('acquire').args[1], 'try');
  host.scripts.next('acquire').reply({ kind: 'busy', heldLeftMs: 500 });
  t.is(await waiter.promise, null);
  t.deepEqual(host.log, [`waiterGone ${ID}`], 'no wake-up watched, nothing cancelled');
  t.is(host.scripts.count('cancel'), 0);
  t.deepEqual(host.events.names(), []);
});

test.serial("a 'try' that is granted takes the same path as a wait: a lease, reported granted", async (t) => {
  const host = new FakeHost();
  const waiter = start(host, acquireOptions(), 'try');
  host.scripts.next('acquire').reply(granted());
  t.is((await waiter.promise)?.token, TOKEN);
  t.deepEqual(host.events.names(), ['granted']);
});

test.serial('a name of another kind or limit rejects LimitMismatchError', async (t) => {
  const host = new FakeHost();
  const waiter = start(host);
  host.scripts.next('acquire').reply({ kind: 'refused', current: 'semaphore 3' });
  await t.throwsAsync(waiter.promise, { instanceOf: LimitMismatchError });
});

test.serial('a failed enqueue is reported, cancelled in case it ran, and rejects with a FairLockError', async (t) => {
  const host = new FakeHost();
  const waiter = start(host);
  host.scripts.next('acquire').fail(new Error('connection reset'));
  await t.throwsAsync(waiter.promise, { instanceOf: FairLockError });
  t.true(host.log.includes('redisFailed enqueue'));
  t.is(host.scripts.count('cancel'), 1);
});

test.serial('queued and onQueued are reported once, though a lapse makes the waiter enqueue again', async (t) => {
  const host = new FakeHost();
  const positions: number[] = [];
  const waiter = start(host, acquireOptions({ onQueued: (p) => positions.push(p) }));
  host.scripts.next('acquire').reply(queued(3));
  await clock.flush();
  void waiter.enqueue(); // as after a lapse
  host.scripts.next('acquire').reply(queued(2));
  await clock.flush();
  t.deepEqual(positions, [3]);
  t.deepEqual(host.events.names(), ['queued']);
  t.deepEqual(host.log, ['watchWakeups', 'watchWakeups']);
});

test.serial('a queued reply that revived a lapsed session makes the other waiters re-check', async (t) => {
  const host = new FakeHost();
  start(host);
  host.scripts.next('acquire').reply(queued(1, true));
  await clock.flush();
  t.true(host.log.includes('reenter'));
});
