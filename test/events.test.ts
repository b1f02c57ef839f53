/**
 * The typed events of FairLocks: each fires once with the right payload for a lock, a semaphore and
 * a read-write lock, and a listener that throws or rejects becomes a process warning.
 */
import test, { type ExecutionContext } from 'ava';
import {
  FairLocks,
  LockAbortedError,
  LockTimeoutError,
  type AbortedEvent,
  type GrantedEvent,
  type QueuedEvent,
  type RedisErrorEvent,
  type ReleasedEvent,
  type TimeoutEvent,
} from '../src/index.js';
import { lockKeys } from '../src/protocol/keys.js';
import { useRedis } from './helpers/fixture.js';
import { newPrefix } from './helpers/redis.js';
import { whenQueued } from './helpers/queued.js';

const fx = useRedis();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Recorded {
  queued: QueuedEvent[];
  granted: GrantedEvent[];
  released: ReleasedEvent[];
  timeout: TimeoutEvent[];
  aborted: AbortedEvent[];
  redisError: RedisErrorEvent[];
}

function record(locks: FairLocks): Recorded {
  const r: Recorded = { queued: [], granted: [], released: [], timeout: [], aborted: [], redisError: [] };
  locks.on('queued', (e) => r.queued.push(e));
  locks.on('granted', (e) => r.granted.push(e));
  locks.on('released', (e) => r.released.push(e));
  locks.on('timeout', (e) => r.timeout.push(e));
  locks.on('aborted', (e) => r.aborted.push(e));
  locks.on('redisError', (e) => r.redisError.push(e));
  return r;
}

function open(t: ExecutionContext): FairLocks {
  const locks = new FairLocks(fx.client, { prefix: newPrefix() });
  t.teardown(() => locks.close());
  return locks;
}

test('lock: queued, granted (immediate and after a wait), released, with ids that match', async (t) => {
  const locks = open(t);
  const r = record(locks);
  const calledAt = performance.now();
  const first = await locks.lock('a').acquire();
  t.is(r.granted.length, 1);
  t.like(r.granted[0], { name: 'a', id: first.id, token: first.token, kind: 'lock', weight: 1, mode: undefined, grantedAt: first.grantedAt });
  t.true(r.granted[0]!.waitedMs >= 0);
  t.true(first.grantedAt - r.granted[0]!.waitedMs >= calledAt, 'grantedAt - waitedMs is the call, on the same clock');
  t.is(r.queued.length, 0, 'an immediate grant is not queued');

  const q = whenQueued();
  const waiting = locks.lock('a').acquire({ onQueued: q.onQueued });
  await q.queued;
  t.is(r.queued.length, 1);
  t.like(r.queued[0], { name: 'a', position: 1, kind: 'lock', weight: 1, mode: undefined });
  await sleep(20);
  await first.release();
  const second = await waiting;
  t.is(r.released.length, 1);
  t.like(r.released[0], { name: 'a', id: first.id, token: first.token, kind: 'lock' });
  t.true(r.released[0]!.heldMs >= 20);
  t.is(r.granted.length, 2);
  t.like(r.granted[1], { name: 'a', id: second.id, token: second.token, grantedAt: second.grantedAt });
  t.true(second.grantedAt >= r.released[0]!.releasedAt, 'granted after the release call, on the same clock');
  t.is(r.queued[0]!.id, second.id, 'queued and granted name the same waiter');
  t.true(r.granted[1]!.waitedMs >= 20);
  await second.release();
  t.is(r.released.length, 2);
});

test('semaphore: weight in the payloads; tryAcquire emits granted', async (t) => {
  const locks = open(t);
  const r = record(locks);
  const sem = locks.semaphore('s', { permits: 3 });
  const a = await sem.acquire({ weight: 2 });
  const none = await sem.tryAcquire({ weight: 2 });
  t.is(none, null);
  const b = (await sem.tryAcquire({ weight: 1 }))!;
  t.deepEqual(r.granted.map((e) => [e.kind, e.weight, e.token]), [['semaphore', 2, a.token], ['semaphore', 1, b.token]]);
  const q = whenQueued();
  const waiting = sem.acquire({ weight: 3, onQueued: q.onQueued });
  await q.queued;
  t.like(r.queued[0], { kind: 'semaphore', weight: 3, position: 1 });
  await Promise.all([a.release(), b.release()]);
  const c = await waiting;
  t.like(r.granted[2], { kind: 'semaphore', weight: 3, token: c.token });
  await c.release();
  t.deepEqual(r.released.map((e) => e.weight).sort(), [1, 2, 3]);
});

test('read-write: mode in the payloads', async (t) => {
  const locks = open(t);
  const r = record(locks);
  const rw = locks.readWrite('rw');
  const reader = await rw.read().acquire();
  const q = whenQueued();
  const writing = rw.write().acquire({ onQueued: q.onQueued });
  await q.queued;
  t.like(r.queued[0], { kind: 'rw', mode: 'write', weight: 1 });
  await reader.release();
  const writer = await writing;
  t.deepEqual(r.granted.map((e) => [e.kind, e.mode]), [['rw', 'read'], ['rw', 'write']]);
  t.like(r.released[0], { kind: 'rw', mode: 'read', token: reader.token });
  await writer.release();
  t.like(r.released[1], { mode: 'write', token: writer.token });
});

test('timeout and aborted fire with waitedMs and the reason; neither fires granted', async (t) => {
  const locks = open(t);
  const r = record(locks);
  const holder = await locks.lock('t').acquire();
  await t.throwsAsync(locks.lock('t').acquire({ timeoutMs: 100 }), { instanceOf: LockTimeoutError });
  t.is(r.timeout.length, 1);
  t.like(r.timeout[0], { name: 't', kind: 'lock' });
  t.true(r.timeout[0]!.waitedMs >= 90, `waited ${r.timeout[0]!.waitedMs}`);
  const controller = new AbortController();
  const q = whenQueued();
  const waiting = locks.lock('t').acquire({ signal: controller.signal, onQueued: q.onQueued });
  await q.queued;
  controller.abort('no longer needed');
  await t.throwsAsync(waiting, { instanceOf: LockAbortedError });
  t.is(r.aborted.length, 1);
  t.like(r.aborted[0], { name: 't', kind: 'lock', reason: 'no longer needed', id: r.queued[1]!.id });
  t.is(r.granted.length, 1, 'only the holder was granted');
  await holder.release();
});

test('a Redis failure on enqueue is a redisError event naming the operation', async (t) => {
  const locks = open(t);
  const r = record(locks);
  // Queue key of the wrong type: the acquire script fails in Redis.
  const prefix = (locks as unknown as { session: { options: { prefix: string } } }).session.options.prefix;
  await fx.client.set(lockKeys(prefix, 'bad').queue, 'not a sorted set');
  await t.throwsAsync(locks.lock('bad').acquire({ timeoutMs: 5_000 }));
  t.true(r.redisError.length >= 1);
  t.like(r.redisError[0], { name: 'bad', operation: 'enqueue' });
  t.truthy(r.redisError[0]!.error);
});

test('a throwing or rejecting listener on any event becomes a warning; fairlock goes on', async (t) => {
  const locks = open(t);
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  for (const event of ['queued', 'granted', 'released', 'timeout'] as const) {
    locks.on(event, () => {
      throw new Error(`${event} listener bug`);
    });
  }
  locks.on('granted', async () => {
    throw new Error('async granted listener bug');
  });
  const holder = await locks.lock('w').acquire();
  // 1 s, not less: the 'queued' event needs the enqueue reply before the timer fires, and a loaded
  // 2-core machine has taken over 50 ms for that.
  await t.throwsAsync(locks.lock('w').acquire({ timeoutMs: 1000 }), { instanceOf: LockTimeoutError });
  await holder.release();
  const again = await locks.lock('w').acquire();
  t.true(again.held);
  await again.release();
  await sleep(50); // warnings are emitted on the next tick
  for (const what of ['queued', 'granted', 'released', 'timeout', 'async granted']) {
    t.true(warnings.some((w) => w.includes(`${what} listener bug`)), `${what}: ${warnings.join('; ')}`);
  }
});

test('nobody listening: no event work (listenerCount is the only cost)', async (t) => {
  const locks = open(t);
  let counted = 0;
  const original = locks.listenerCount.bind(locks);
  locks.listenerCount = ((event: string) => (counted++, original(event))) as typeof locks.listenerCount;
  let emitted = 0;
  const raw = locks.rawListeners.bind(locks);
  locks.rawListeners = ((event: string) => (emitted++, raw(event as 'granted'))) as typeof locks.rawListeners;
  const lease = await locks.lock('n').acquire();
  await lease.release();
  t.true(counted >= 2, 'granted and released asked whether anyone listens');
  t.is(emitted, 0);
});
