/**
 * LockState, one session's heartbeat on one name, on a fake clock with a scripted fake session (no
 * Redis): a beat renews the leases Redis still names and marks lost those it does not, hands a grant
 * it finds to its waiter, makes every waiter re-enter after a lapse, and releases in Redis the
 * grants whose release failed ("beat until released").
 */
import test from 'ava';
import { HeldLease } from '../../src/client/held-lease.js';
import type { LockState } from '../../src/client/lock-state.js';
import { Waiter } from '../../src/client/waiter.js';
import { installClock, type FakeClock } from './fake-clock.js';
import { acquireOptions, beatParts, fakeSession, LOCK, queued, TOKEN } from './fake-host.js';

let clock: FakeClock;
test.beforeEach(() => {
  clock = installClock();
});
test.afterEach.always(() => clock.uninstall());

const LEASE_MS = 1_000;
/** The beat period with a 1 s auto-renewed lease: heartbeatMs (200), below leaseMs / 3. */
const PERIOD = 200;

function hold(state: LockState, id = 'sess:1:1000:1:1:x'): HeldLease {
  const now = clock.now();
  const lease = new HeldLease(state, { id, token: TOKEN, exp: now + LEASE_MS, sample: { now, sentAt: now }, request: LOCK, leaseMs: LEASE_MS, autoRenew: true });
  state.leaseHeld(lease);
  return lease;
}

async function queue(session: ReturnType<typeof fakeSession>, id: string): Promise<Waiter> {
  const state = session.state('n');
  const waiter = new Waiter(state, id, acquireOptions(), LOCK);
  state.addWaiter(waiter);
  void waiter.enqueue();
  session.scripts.next('acquire').reply(queued());
  await clock.flush();
  return waiter;
}

test.serial('a beat renews the leases Redis still names', async (t) => {
  const session = fakeSession();
  const lease = hold(session.state('n'));
  await clock.tick(PERIOD);
  const beat = session.scripts.next('heartbeat');
  t.deepEqual(beatParts(beat).held, [lease.id]);
  beat.reply({ lapsed: false, holders: [{ id: lease.id, token: TOKEN, exp: clock.now() + LEASE_MS }] });
  await clock.flush();
  t.is(lease.remainingMs, LEASE_MS - (LEASE_MS * 0.01 + 2));
});

test.serial('a beat marks lost a lease Redis no longer names, and does not release it again', async (t) => {
  const session = fakeSession();
  const lease = hold(session.state('n'));
  await clock.tick(PERIOD);
  session.scripts.next('heartbeat').reply({ lapsed: false, holders: [] });
  await clock.flush();
  t.false(lease.held);
  t.deepEqual(session.events.names(), ['lost']);
  t.false(session.locks.has('n'), 'nothing left on the name: its state is dropped and the beats stop');
  t.is(clock.pending(), 0);
});

test.serial('a beat that finds a grant to a queued waiter hands it over', async (t) => {
  const session = fakeSession();
  const waiter = await queue(session, 'sess:2:1000:1:1:x');
  await clock.tick(session.options.heartbeatMs);
  const beat = session.scripts.next('heartbeat');
  t.is(beatParts(beat).newest, waiter.id, 'the beat checks Redis still has the newest waiter');
  beat.reply({ lapsed: false, holders: [{ id: waiter.id, token: TOKEN, exp: clock.now() + LEASE_MS }] });
  const lease = await waiter.promise;
  t.is(lease?.token, TOKEN);
  t.true(session.state('n').leases.has(lease!));
});

test.serial('after a lapse every waiter of the name runs its acquire again', async (t) => {
  const session = fakeSession();
  await queue(session, 'sess:2:1000:1:1:x');
  await queue(session, 'sess:3:1000:1:1:x');
  t.is(session.scripts.count('acquire'), 2);
  await clock.tick(session.options.heartbeatMs);
  session.scripts.next('heartbeat').reply({ lapsed: true, holders: [] });
  await clock.flush();
  t.is(session.scripts.count('acquire'), 4);
});

test.serial('a reply later than the last one proved counts as a lapse although Redis did not say so', async (t) => {
  const session = fakeSession();
  const state = session.state('n');
  const live = session.options.livenessMs;
  t.false(state.refreshed(clock.now(), false, clock.now() + live));
  t.false(state.refreshed(clock.now() + live - 1, false, clock.now() + 2 * live - 1));
  t.true(state.refreshed(clock.now() + 3 * live, false, clock.now() + 4 * live), 'the session was not proved alive in between');
});

test.serial('an enqueue proves the session alive only until the deadline Redis reports, not now + liveness', async (t) => {
  const session = fakeSession();
  const state = session.state('n');
  const live = session.options.livenessMs;
  // The enqueue did not move a deadline that had more than half the liveness left.
  t.false(state.refreshed(clock.now(), false, clock.now() + live / 2 + 1));
  t.true(state.refreshed(clock.now() + live / 2 + 1, false, clock.now() + live), 'past the reported deadline: a lapse');
});

test.serial('a release that fails is retried by the next beat, which drops the id once done', async (t) => {
  const session = fakeSession();
  const lease = hold(session.state('n'));
  const released = lease.release();
  session.scripts.next('release').fail(new Error('connection reset'));
  await t.throwsAsync(released);
  t.deepEqual(session.events.names(), ['redisError']);
  await clock.tick(PERIOD);
  const beat = session.scripts.next('heartbeat');
  t.deepEqual(beatParts(beat).dropped, [lease.id]);
  t.deepEqual(beatParts(beat).held, []);
  beat.reply({ lapsed: false, holders: [] });
  await clock.flush();
  t.false(session.locks.has('n'), 'released: nothing left on the name');
  t.is(clock.pending(), 0);
});

test.serial('a lease marked lost is released in Redis by a beat at once, not at the next period', async (t) => {
  const session = fakeSession({ heartbeatMs: 500 });
  const lease = hold(session.state('n'), 'sess:1:1000:0:1:x');
  lease.markLost('test');
  await clock.tick(0);
  t.deepEqual(beatParts(session.scripts.next('heartbeat')).dropped, [lease.id]);
});

test.serial('a stopped session beats no more', async (t) => {
  const session = fakeSession();
  const state = session.state('n');
  hold(state);
  session.stopped = true;
  state.stopTimer();
  await clock.tick(10 * PERIOD);
  t.is(session.scripts.count('heartbeat'), 0);
});

test.serial('a grant of this session that no waiter or lease knows (an enqueue sent twice) is dropped by the next beat', async (t) => {
  const session = fakeSession();
  const lease = hold(session.state('n'));
  await clock.tick(PERIOD);
  const beat = session.scripts.next('heartbeat');
  t.deepEqual(beatParts(beat).held, [lease.id]);
  beat.reply({ lapsed: false, holders: [{ id: lease.id, token: 1, exp: clock.now() + LEASE_MS }, { id: 'sess:9:1000:1:1:x', token: 2, exp: clock.now() + LEASE_MS }] });
  await clock.flush();
  await clock.tick(0);
  const next = session.scripts.next('heartbeat');
  t.deepEqual(beatParts(next).dropped, ['sess:9:1000:1:1:x'], 'the unknown grant is released');
  t.deepEqual(beatParts(next).held, [lease.id], 'the known lease is not');
  next.reply({ lapsed: false, holders: [{ id: lease.id, token: 1, exp: clock.now() + LEASE_MS }] });
  await clock.flush();
  t.true(lease.held);
  const released = lease.release();
  session.scripts.next('release').reply({ kind: 'released' });
  await released;
});
