/**
 * HeldLease on a fake clock with a scripted fake host (no Redis): its deadline timer marks it lost
 * and aborts its signal, a renewal never revives a deadline that passed, release is one call however
 * often it is called, and extend after a loss or a release throws instead of calling Redis.
 */
import test from 'ava';
import { HeldLease } from '../../src/client/held-lease.js';
import { LockLostError, NotHolderError } from '../../src/errors.js';
import { installClock, type FakeClock } from './fake-clock.js';
import { FakeHost, LOCK, TOKEN } from './fake-host.js';

const ID = 'sess:1:1000:1:1:x';
const LEASE_MS = 1_000;
/** What the lease keeps back from Redis's deadline for clock drift (leaseMs * driftFactor + 2 ms). */
const MARGIN = LEASE_MS * 0.01 + 2;

let clock: FakeClock;
test.beforeEach(() => {
  clock = installClock();
});
test.afterEach.always(() => clock.uninstall());

/** A lease granted now, ending at Redis time now + LEASE_MS (Redis's clock is the fake clock). */
function grant(host: FakeHost): HeldLease {
  const now = clock.now();
  const lease = new HeldLease(host, { id: ID, token: TOKEN, exp: now + LEASE_MS, sample: { now, sentAt: now }, request: LOCK, leaseMs: LEASE_MS, autoRenew: true });
  host.leaseHeld(lease);
  return lease;
}

test.serial('a lease is built from one grant record', (t) => {
  const lease = grant(new FakeHost());
  t.like(lease, { id: ID, token: TOKEN, name: 'n', kind: 'lock', weight: 1, mode: undefined, autoRenew: true, lengthMs: LEASE_MS, held: true });
  t.is(lease.remainingMs, LEASE_MS - MARGIN);
});

test.serial('the deadline timer marks the lease lost, aborts its signal and has the heartbeat release it', async (t) => {
  const host = new FakeHost();
  const lease = grant(host);
  const signal = lease.signal;
  await clock.tick(LEASE_MS - MARGIN - 1);
  t.false(signal.aborted, 'not a ms early');
  await clock.tick(1);
  t.true(signal.aborted);
  t.true(signal.reason instanceof LockLostError);
  t.false(lease.held);
  t.is(lease.remainingMs, 0);
  t.false(host.leases.has(lease), 'no longer renewed');
  t.deepEqual(host.log, [`releaseLater ${ID}`]);
  t.deepEqual(host.events.names(), ['lost']);
});

test.serial('renewed() moves a live deadline later, and ignores an earlier one', async (t) => {
  const lease = grant(new FakeHost());
  await clock.tick(500);
  const now = clock.now();
  lease.renewed(now + LEASE_MS, { now, sentAt: now });
  t.is(lease.remainingMs, LEASE_MS - MARGIN);
  lease.renewed(now + 10, { now, sentAt: now });
  t.is(lease.remainingMs, LEASE_MS - MARGIN, 'a renewal never shortens the lease');
});

test.serial('renewed() never revives a lease whose deadline passed', async (t) => {
  const lease = grant(new FakeHost());
  await clock.tick(LEASE_MS);
  t.false(lease.held);
  const now = clock.now();
  lease.renewed(now + LEASE_MS, { now, sentAt: now });
  t.false(lease.held);
  t.true(lease.signal.aborted);
});

test.serial('release twice is one release call, reported released once', async (t) => {
  const host = new FakeHost();
  const lease = grant(host);
  const first = lease.release();
  const second = lease.release();
  t.is(first, second);
  host.scripts.next('release').reply({ kind: 'released' });
  await Promise.all([first, second]);
  t.is(host.scripts.count('release'), 1);
  t.deepEqual(host.events.names(), ['released']);
  t.false(lease.held);
  await clock.tick(LEASE_MS);
  t.false(host.events.names().includes('lost'), 'a released lease is never reported lost');
});

test.serial('a release Redis answers not-holder rejects LockLostError and is not released again', async (t) => {
  const host = new FakeHost();
  const lease = grant(host);
  const released = lease.release();
  host.scripts.next('release').reply({ kind: 'not-holder' });
  await t.throwsAsync(released, { instanceOf: LockLostError });
  t.deepEqual(host.events.names(), ['lost']);
  t.deepEqual(host.log, [], 'Redis names it no more: nothing for the heartbeat to release');
});

test.serial('extend after a loss throws LockLostError without calling Redis', async (t) => {
  const host = new FakeHost();
  const lease = grant(host);
  await clock.tick(LEASE_MS);
  await t.throwsAsync(lease.extend(), { instanceOf: LockLostError });
  t.is(host.scripts.count('extend'), 0);
});

test.serial('extend after a release throws NotHolderError without calling Redis', async (t) => {
  const host = new FakeHost();
  const lease = grant(host);
  const released = lease.release();
  host.scripts.next('release').reply({ kind: 'released' });
  await released;
  await t.throwsAsync(lease.extend(), { instanceOf: NotHolderError });
  t.is(host.scripts.count('extend'), 0);
});

test.serial('extend(ms) sets the deadline ms from Redis now, shorter too, and later renewals use ms', async (t) => {
  const host = new FakeHost();
  const lease = grant(host);
  const extended = lease.extend(200);
  t.deepEqual(host.scripts.next('extend').args, [ID, 200]);
  host.scripts.next('extend').reply({ kind: 'extended', exp: clock.now() + 200 });
  await extended;
  t.is(lease.lengthMs, 200);
  t.is(lease.remainingMs, 200 - (200 * 0.01 + 2));
});

test.serial('an extend Redis answers not-holder marks the lease lost and throws', async (t) => {
  const host = new FakeHost();
  const lease = grant(host);
  const extended = lease.extend();
  host.scripts.next('extend').reply({ kind: 'not-holder' });
  await t.throwsAsync(extended, { instanceOf: LockLostError });
  t.false(lease.held);
  t.deepEqual(host.events.names(), ['lost']);
});
