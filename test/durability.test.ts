/**
 * durability: { replicas, timeoutMs } confirms every grant on replicas before the caller gets it: an
 * immediate grant by WAIT, a hand-off by a beat plus WAIT; with fewer acks than asked, the grant is
 * released in Redis and the call rejects with NotReplicatedError. (A replica that must not ack is
 * SIGSTOPped and its link cut: a stopped process still receives, and the kernel would ack.)
 */
import test, { type ExecutionContext } from 'ava';
import { performance } from 'node:perf_hooks';
import { ClosedError, FairLocks, InvalidArgumentError, LockTimeoutError, NotReplicatedError, type Durability, type Lease } from '../src/index.js';
import { lockKeys } from '../src/protocol/keys.js';
import { newLocks } from './helpers/cleanup.js';
import { replicated, waitCalls, type Pair } from './helpers/replicated.js';
import { whenQueued } from './helpers/queued.js';
import { newPrefix } from './helpers/redis.js';
import { holdersAt } from './helpers/state.js';
import { within, until } from './helpers/bounded.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const opts = { heartbeatMs: 100, livenessMs: 1_000, leaseMs: 5_000 };
/** Durability that a running replica meets at once and a cut one never meets. */
const DURABLE: Durability = { replicas: 1, timeoutMs: 5_000 };
/** Durability that a cut replica fails fast. */
const SHORT: Durability = { replicas: 1, timeoutMs: 200 };

/**
 * Loads the scripts into the master's cache with a plain acquire, hand-off and release, so that the
 * WAIT counts below see no EVALSHA refused with NOSCRIPT (see the cold-cache test at the end).
 */
async function warmUp(locks: FairLocks, other: FairLocks): Promise<void> {
  const first = await within(locks.lock('warm-up').acquire({ durability: { replicas: 0 } }), 5_000, 'the warm-up grant');
  const q = whenQueued();
  const next = other.lock('warm-up').acquire({ onQueued: q.onQueued, durability: { replicas: 0 } });
  next.catch(() => undefined);
  await within(q.queued, 5_000, 'the warm-up waiter queued');
  await sleep(3 * opts.heartbeatMs); // the heartbeat script too
  await within(first.release(), 5_000, 'the warm-up release');
  await within((await within(next, 5_000, 'the warm-up hand-off')).release(), 5_000, 'the warm-up release');
}

/** The grant `lease` as the replica has it (token and whether confirmed), read at once. */
async function onReplica(pair: Pair, prefix: string, name: string, lease: Lease) {
  const entry = (await holdersAt(pair.replicaClient, lockKeys(prefix, name).state)).find((h) => h.id === lease.id);
  return entry && { token: entry.token, confirmed: entry.confirmed };
}

test('default durability: no WAIT is sent, for an immediate grant or a hand-off', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const a = newLocks(t, pair.client, { prefix, ...opts });
  const b = newLocks(t, await pair.another(), { prefix, ...opts });
  const first = await within(a.lock('n').acquire(), 5_000, 'the immediate grant');
  const q = whenQueued();
  const next = b.lock('n').acquire({ onQueued: q.onQueued });
  next.catch(() => undefined);
  await within(q.queued, 5_000, 'the waiter queued');
  await within(first.release(), 5_000, 'the release');
  const second = await within(next, 5_000, 'the hand-off');
  t.true(second.token > first.token);
  t.truthy(await within(a.lock('m').tryAcquire(), 5_000, 'tryAcquire'));
  t.is(await waitCalls(pair.client), 0, 'no WAIT');
});

test('an immediate grant with { replicas: 1 } resolves once the replica has it (acquire, tryAcquire, using; instance or per call)', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const durable = newLocks(t, pair.client, { prefix, ...opts, durability: DURABLE });
  const plain = newLocks(t, await pair.another(), { prefix, ...opts });
  await warmUp(durable, plain);
  const base = await waitCalls(pair.client);
  const waits = async () => (await waitCalls(pair.client)) - base;

  const l1 = await within(durable.lock('a').acquire(), 5_000, 'acquire with the instance durability');
  t.deepEqual(await onReplica(pair, prefix, 'a', l1), { token: l1.token, confirmed: true }, 'on the replica when acquire() resolves');
  t.is(await waits(), 1, 'one WAIT, right behind the acquire script');

  const l2 = await within(plain.lock('b').acquire({ durability: { replicas: 1 } }), 5_000, 'acquire with a per-call durability');
  t.deepEqual(await onReplica(pair, prefix, 'b', l2), { token: l2.token, confirmed: true });
  t.is(await waits(), 2);

  const l3 = await within(plain.lock('c').tryAcquire({ durability: DURABLE }), 5_000, 'tryAcquire');
  t.truthy(l3);
  t.deepEqual(await onReplica(pair, prefix, 'c', l3!), { token: l3!.token, confirmed: true });
  t.is(await waits(), 3);

  let seen: { token: number; confirmed: boolean } | undefined;
  const result = await within(
    plain.lock('d').using(async (lease) => {
      seen = await onReplica(pair, prefix, 'd', lease);
      return seen?.token === lease.token ? 'ran' : 'not on the replica';
    }, { durability: DURABLE }),
    5_000,
    'using',
  );
  t.is(result, 'ran');
  t.is(await waits(), 4);

  const l5 = await within(plain.lock('e', { durability: DURABLE }).acquire(), 5_000, 'acquire with the handle default');
  t.deepEqual(await onReplica(pair, prefix, 'e', l5), { token: l5.token, confirmed: true });
  t.is(await waits(), 5);

  for (const l of [l1, l2, l3!, l5]) await within(l.release(), 5_000, 'a release');
});

test('a durable hand-off resolves once a beat and WAIT confirmed it on the replica, token above the holder\'s', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const a = newLocks(t, pair.client, { prefix, ...opts });
  const b = newLocks(t, await pair.another(), { prefix, ...opts, durability: DURABLE });
  await warmUp(a, b);
  const holder = await within(a.lock('n').acquire(), 5_000, 'the holder');
  const q = whenQueued();
  const next = b.lock('n').acquire({ onQueued: q.onQueued });
  next.catch(() => undefined);
  await within(q.queued, 5_000, 'the durable waiter queued');
  const before = await waitCalls(pair.client);
  await within(holder.release(), 5_000, 'the release');
  const lease = await within(next, 5_000, 'the durable hand-off');
  t.true(lease.token > holder.token, `${lease.token} > ${holder.token}`);
  t.is(await waitCalls(pair.client), before + 1, 'confirmed with one WAIT after the release');
  t.deepEqual(await onReplica(pair, prefix, 'n', lease), { token: lease.token, confirmed: true }, 'the replica has the confirmed grant');
  t.true(lease.held);
  await within(lease.release(), 5_000, 'the release of the durable lease');
});

test('replica cut: acquire and tryAcquire reject NotReplicatedError (acked 0, required 1) and leave the name free', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const short = newLocks(t, pair.client, { prefix, ...opts, durability: SHORT });
  const plain = newLocks(t, await pair.another(), { prefix, ...opts });
  await pair.cut();

  const started = performance.now();
  const err = await t.throwsAsync(within(short.lock('n').acquire(), 5_000, 'acquire'), { instanceOf: NotReplicatedError });
  const tookMs = performance.now() - started;
  t.is(err?.code, 'NOT_REPLICATED');
  t.is(err?.acked, 0);
  t.is(err?.required, 1);
  t.true(tookMs >= 150 && tookMs < 3_000, `WAIT 1 200 ran out: ${Math.round(tookMs)} ms`);
  const after = await short.inspect('n');
  t.deepEqual([after.holders, after.queue], [[], []], 'the grant was released in Redis');

  const errTry = await t.throwsAsync(within(plain.lock('n').tryAcquire({ durability: SHORT }), 5_000, 'tryAcquire'), { instanceOf: NotReplicatedError });
  t.is(errTry?.acked, 0);
  t.is(errTry?.required, 1);
  t.deepEqual((await plain.inspect('n')).holders, [], 'released after tryAcquire too');

  const errUsing = await t.throwsAsync(
    within(plain.lock('n').using(() => t.fail('fn must not run'), { durability: SHORT }), 5_000, 'using'),
    { instanceOf: NotReplicatedError },
  );
  t.is(errUsing?.required, 1);

  // Free: anyone gets it now, without durability.
  const l = await within(plain.lock('n').tryAcquire(), 5_000, 'a plain tryAcquire');
  t.truthy(l, 'the lock is free');
  await within(l!.release(), 5_000, 'its release');
});

test('replica cut during a wait: the durable hand-off rejects NotReplicatedError, the grant is released, a third party gets the lock', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const a = newLocks(t, pair.client, { prefix, ...opts });
  const b = newLocks(t, await pair.another(), { prefix, ...opts });
  const c = newLocks(t, await pair.another(), { prefix, ...opts });
  const holder = await within(a.lock('n').acquire(), 5_000, 'the holder');
  const q = whenQueued();
  const next = b.lock('n').acquire({ onQueued: q.onQueued, durability: SHORT });
  next.catch(() => undefined);
  await within(q.queued, 5_000, 'the durable waiter queued');
  await pair.cut();
  await within(holder.release(), 5_000, 'the release');
  const err = await t.throwsAsync(within(next, 5_000, 'the durable hand-off'), { instanceOf: NotReplicatedError });
  t.is(err?.acked, 0);
  t.is(err?.required, 1);
  const info = await c.inspect('n');
  t.deepEqual([info.holders, info.queue], [[], []], 'the unconfirmed grant was released');
  const third = await within(c.lock('n').tryAcquire(), 5_000, 'a third party');
  t.truthy(third, 'the lock is free again');
  t.true(third!.token > holder.token);
  await within(third!.release(), 5_000, 'its release');
});

test('asking for 2 replicas when there is 1 rejects with acked 1, required 2 (immediate grant and hand-off)', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const a = newLocks(t, pair.client, { prefix, ...opts });
  const b = newLocks(t, await pair.another(), { prefix, ...opts });
  await warmUp(a, b);
  // WAIT runs to its end here: long enough for the one replica to ack on a loaded machine.
  const two: Durability = { replicas: 2, timeoutMs: 1_000 };
  const err = await t.throwsAsync(within(a.lock('n').acquire({ durability: two }), 5_000, 'acquire'), { instanceOf: NotReplicatedError });
  t.is(err?.acked, 1);
  t.is(err?.required, 2);
  t.deepEqual((await a.inspect('n')).holders, []);

  const holder = await within(a.lock('n').acquire(), 5_000, 'the holder');
  const q = whenQueued();
  const next = b.lock('n').acquire({ onQueued: q.onQueued, durability: two });
  next.catch(() => undefined);
  await within(q.queued, 5_000, 'the waiter queued');
  await within(holder.release(), 5_000, 'the release');
  const errHandOff = await t.throwsAsync(within(next, 5_000, 'the hand-off'), { instanceOf: NotReplicatedError });
  t.is(errHandOff?.acked, 1);
  t.is(errHandOff?.required, 2);
  t.deepEqual((await a.inspect('n')).holders, [], 'released');
});

test('per-acquire { replicas: 0 } turns the instance durability off: resolves with no replica reachable, no WAIT', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const durable = newLocks(t, pair.client, { prefix, ...opts, durability: { replicas: 1, timeoutMs: 10_000 } });
  const other = newLocks(t, await pair.another(), { prefix, ...opts });
  await pair.cut();
  const before = await waitCalls(pair.client);
  const off = { durability: { replicas: 0 } };

  const started = performance.now();
  const l1 = await within(durable.lock('a').acquire(off), 3_000, 'acquire with replicas 0');
  const l2 = await within(durable.lock('b').tryAcquire(off), 3_000, 'tryAcquire with replicas 0');
  t.truthy(l2);
  const l3 = await within(durable.lock('c', off).acquire(), 3_000, 'acquire with a handle default of replicas 0');
  t.is(await within(durable.lock('d').using(() => 'ran', off), 3_000, 'using with replicas 0'), 'ran');

  // A hand-off with replicas 0 is not confirmed with WAIT either.
  const holder = await within(other.lock('e').acquire(), 3_000, 'the holder');
  const q = whenQueued();
  const next = durable.lock('e').acquire({ ...off, onQueued: q.onQueued });
  next.catch(() => undefined);
  await within(q.queued, 3_000, 'the waiter queued');
  await within(holder.release(), 3_000, 'the release');
  const l4 = await within(next, 3_000, 'the hand-off with replicas 0');
  t.true(l4.token > holder.token);
  const tookMs = performance.now() - started;

  t.true(tookMs < 5_000, `no WAIT of 10 s: ${Math.round(tookMs)} ms`);
  t.is(await waitCalls(pair.client), before, 'no WAIT sent');
  for (const l of [l1, l2!, l3, l4]) await within(l.release(), 3_000, 'a release');
});

test('bad durability values: InvalidArgumentError naming options.durability.replicas / .timeoutMs (constructor and acquires)', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const badReplicas: unknown[] = [-1, 1.5, 1_001, NaN, Infinity, '1', null, undefined, true];
  const badTimeouts: unknown[] = [0, -1, 0.5, NaN, Infinity, '100', 2 ** 31, null];
  const cases: { durability: unknown; names: RegExp }[] = [
    ...badReplicas.map((replicas) => ({ durability: { replicas, timeoutMs: 100 }, names: /options\.durability\.replicas/ })),
    { durability: { timeoutMs: 100 }, names: /options\.durability\.replicas/ },
    ...badTimeouts.map((timeoutMs) => ({ durability: { replicas: 1, timeoutMs }, names: /options\.durability\.timeoutMs/ })),
    ...[null, 'x', 1, [1]].map((durability) => ({ durability, names: /options\.durability\b/ })),
  ];
  const locks = newLocks(t, pair.client, { prefix, ...opts });
  for (const { durability, names } of cases) {
    const label = JSON.stringify(durability) ?? String(durability);
    t.throws(() => new FairLocks(pair.client, { prefix, durability: durability as Durability }), { instanceOf: InvalidArgumentError, message: names }, `constructor ${label}`);
    const o = { durability: durability as Durability };
    const calls: [string, () => Promise<unknown>][] = [
      ['lock.acquire', () => locks.lock('n').acquire(o)],
      ['lock.tryAcquire', () => locks.lock('n').tryAcquire(o)],
      ['lock.using', () => locks.lock('n').using(() => undefined, o)],
      ['lock default', () => locks.lock('n', o).acquire()],
      ['semaphore.acquire', () => locks.semaphore('s', { permits: 2 }).acquire(o)],
      ['semaphore default', () => locks.semaphore('s', { permits: 2, ...o }).tryAcquire()],
      ['read.acquire', () => locks.readWrite('rw').read().acquire(o)],
      ['write.tryAcquire', () => locks.readWrite('rw').write().tryAcquire(o)],
    ];
    for (const [what, call] of calls) {
      await t.throwsAsync(within(Promise.resolve().then(call), 3_000, what), { instanceOf: InvalidArgumentError, message: names }, `${what} ${label}`);
    }
  }
  // Nothing reached Redis: no grant, no queue, no WAIT.
  for (const name of ['n', 's', 'rw']) t.deepEqual((await locks.inspect(name)).holders, [], name);
  t.is(await waitCalls(pair.client), 0);

  // The limits themselves are accepted (no I/O in the constructor).
  for (const durability of [{ replicas: 0 }, { replicas: 1_000, timeoutMs: 1 }, { replicas: 1, timeoutMs: 2 ** 31 - 1 }]) {
    t.notThrows(() => newLocks(t, pair.client, { prefix, durability }), JSON.stringify(durability));
  }
});

test('a semaphore and a read-write lock with durability: resolve with the replica up, reject NotReplicatedError with it cut', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const locks = newLocks(t, pair.client, { prefix, ...opts });
  await warmUp(locks, newLocks(t, await pair.another(), { prefix, ...opts }));
  const base = await waitCalls(pair.client);
  const waits = async () => (await waitCalls(pair.client)) - base;
  const sem = locks.semaphore('sem', { permits: 3 });
  const rw = locks.readWrite('rw');

  const s1 = await within(sem.acquire({ weight: 2, durability: DURABLE }), 5_000, 'the semaphore');
  t.deepEqual(await onReplica(pair, prefix, 'sem', s1), { token: s1.token, confirmed: true });
  const s2 = await within(sem.tryAcquire({ durability: DURABLE }), 5_000, 'the semaphore tryAcquire');
  t.truthy(s2);
  const r1 = await within(rw.read().acquire({ durability: DURABLE }), 5_000, 'a read');
  const r2 = await within(rw.read({ durability: DURABLE }).acquire(), 5_000, 'another read');
  t.deepEqual(await onReplica(pair, prefix, 'rw', r1), { token: r1.token, confirmed: true });
  t.deepEqual(await onReplica(pair, prefix, 'rw', r2), { token: r2.token, confirmed: true });
  for (const l of [s1, s2!, r1, r2]) await within(l.release(), 5_000, 'a release');
  const w1 = await within(rw.write().acquire({ durability: DURABLE }), 5_000, 'the write');
  t.deepEqual(await onReplica(pair, prefix, 'rw', w1), { token: w1.token, confirmed: true });
  await within(w1.release(), 5_000, 'the write release');
  t.is(await waits(), 5);

  await pair.cut();
  const attempts: [string, () => Promise<unknown>][] = [
    ['semaphore.acquire', () => sem.acquire({ weight: 3, durability: SHORT })],
    ['semaphore.tryAcquire', () => sem.tryAcquire({ durability: SHORT })],
    ['read.acquire', () => rw.read().acquire({ durability: SHORT })],
    ['write.acquire', () => rw.write().acquire({ durability: SHORT })],
    ['write.tryAcquire', () => rw.write().tryAcquire({ durability: SHORT })],
  ];
  for (const [what, attempt] of attempts) {
    const err = await t.throwsAsync(within(attempt(), 5_000, what), { instanceOf: NotReplicatedError }, what);
    t.deepEqual([err?.acked, err?.required], [0, 1], what);
  }
  const [si, ri] = await Promise.all([locks.inspect('sem'), locks.inspect('rw')]);
  t.deepEqual([si.holders, si.queue, si.available], [[], [], 3], 'the semaphore is free');
  t.deepEqual([ri.holders, ri.queue], [[], []], 'the read-write lock is free');

  // With the replica back, durable grants work again.
  await within(pair.resume(), 15_000, 'the replica back');
  const again = await within(rw.write().acquire({ durability: DURABLE }), 5_000, 'a write after the replica is back');
  t.deepEqual(await onReplica(pair, prefix, 'rw', again), { token: again.token, confirmed: true });
  await within(again.release(), 5_000, 'its release');
});

// On a server whose script cache is empty (a fresh master, a restart, a failover) an EVALSHA
// refused with NOSCRIPT would have a WAIT pipelined behind it for nothing: a durable call sends a
// script it has not seen loaded as EVAL, so there is one WAIT, and a shortfall takes one timeoutMs.
test('on a cold script cache a durable acquire sends one WAIT, and a shortfall takes one timeoutMs', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const locks = newLocks(t, pair.client, { prefix, ...opts });
  await pair.cut();
  const started = performance.now();
  await t.throwsAsync(within(locks.lock('n').acquire({ durability: { replicas: 1, timeoutMs: 500 } }), 5_000, 'acquire'), { instanceOf: NotReplicatedError });
  const tookMs = performance.now() - started;
  t.is(await waitCalls(pair.client), 1, 'one WAIT');
  t.true(tookMs < 900, `one WAIT of 500 ms: ${Math.round(tookMs)} ms`);
});

test('a durability shortfall never holds up the heartbeats of the other leases: WAIT runs on a connection of its own', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const locks = newLocks(t, pair.client, { prefix, heartbeatMs: 100, livenessMs: 1_000 });
  const other = newLocks(t, await pair.another(), { prefix, ...opts });
  await warmUp(locks, other);
  // A short auto-renewed lease: with its beats stuck behind three WAITs of 1 s it would run out.
  const plain = await within(locks.lock('plain').acquire({ leaseMs: 600 }), 5_000, 'the plain grant');
  await pair.cut();
  const durable = ['d1', 'd2', 'd3'].map((n) => locks.lock(n).acquire({ durability: { replicas: 1, timeoutMs: 1_000 } }));
  for (const p of durable) await t.throwsAsync(within(p, 10_000, 'the durable acquire'), { instanceOf: NotReplicatedError });
  t.false(plain.signal.aborted, 'the plain lease was renewed all along');
  await within(plain.release(), 5_000, 'the plain release');
});

test('close() while a durable grant waits for its replicas: the acquire rejects with ClosedError, nothing is held', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const locks = newLocks(t, pair.client, { prefix, ...opts });
  const other = newLocks(t, await pair.another(), { prefix, ...opts });
  await warmUp(locks, other);
  await pair.cut();
  const pending = locks.lock('c').acquire({ durability: { replicas: 1, timeoutMs: 3_000 } });
  pending.catch(() => undefined);
  await sleep(300); // granted; its WAIT is under way
  await within(locks.close(), 10_000, 'close()');
  await t.throwsAsync(within(pending, 10_000, 'the acquire'), { instanceOf: ClosedError });
  await pair.resume();
  await until(async () => (await other.inspect('c')).holders.length === 0, 5_000, 'the grant released');
  t.pass();
});

test('timeoutMs bounds the wait for the replicas too: the acquire rejects on time and the grant is released', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const locks = newLocks(t, pair.client, { prefix, ...opts });
  const other = newLocks(t, await pair.another(), { prefix, ...opts });
  await warmUp(locks, other);
  await pair.cut();
  const started = performance.now();
  await t.throwsAsync(within(locks.lock('tm').acquire({ timeoutMs: 300, durability: { replicas: 1, timeoutMs: 5_000 } }), 10_000, 'the acquire'), {
    instanceOf: LockTimeoutError,
  });
  t.log(`rejected after ${Math.round(performance.now() - started)} ms (WAIT's own timeout: 5000 ms)`);
  await pair.resume();
  await until(async () => (await other.inspect('tm')).holders.length === 0, 10_000, 'the grant released');
  t.pass();
});
