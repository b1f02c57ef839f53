/**
 * While a durable grant waits for its replicas, the call's signal, timeoutMs and close() still end it,
 * for every entry point of every primitive: the caller gets the typed error of the cause at once and
 * the grant is released in Redis. `timeoutMs: 0` with durability is refused before anything is sent.
 */
import test, { type ExecutionContext } from 'ava';
import { performance } from 'node:perf_hooks';
import { ClosedError, InvalidArgumentError, LockAbortedError, LockTimeoutError, type FairLocks, type FairLock, type Lease } from '../src/index.js';
import { newLocks, openClient, ownRedis } from './helpers/cleanup.js';
import { waitCalls } from './helpers/replicated.js';
import { newPrefix } from './helpers/redis.js';
import type { RedisClient } from './helpers/redis-client.js';
import { within, until } from './helpers/bounded.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const opts = { heartbeatMs: 100, livenessMs: 1_000, leaseMs: 5_000 };
/** No replica exists: this WAIT runs its whole 5 s. */
const DURABLE = { replicas: 1, timeoutMs: 5_000 };
/** Answered well before the 5 s the WAIT would take. */
const BOUND_MS = 2_500;

type Handle = (locks: FairLocks) => FairLock;
const handles: [string, Handle][] = [
  ['lock', (l) => l.lock('n')],
  ['semaphore', (l) => l.semaphore('n', { permits: 3 })],
  ['read', (l) => l.readWrite('n').read()],
  ['write', (l) => l.readWrite('n').write()],
];
type Options = { signal?: AbortSignal; timeoutMs?: number };
type Entry = (h: FairLock, o: Options) => Promise<unknown>;
const entries: [string, Entry][] = [
  ['acquire', (h, o) => h.acquire({ ...o, durability: DURABLE })],
  ['tryAcquire', (h, o) => h.tryAcquire({ ...(o.signal ? { signal: o.signal } : {}), durability: DURABLE })],
  ['using', (h, o) => h.using(() => Promise.reject(new Error('fn must not run')), { ...o, durability: DURABLE })],
];

async function setup(t: ExecutionContext): Promise<{ url: string; client: RedisClient; reader: FairLocks; prefix: string }> {
  const server = await within(ownRedis(t), 15_000, 'starting Redis');
  const client = await openClient(t, server.url);
  const prefix = newPrefix();
  return { url: server.url, client, reader: newLocks(t, client, { prefix, ...opts }), prefix };
}

async function released(reader: FairLocks, what: string): Promise<void> {
  await until(async () => {
    const info = await reader.inspect('n');
    return info.holders.length === 0 && info.queue.length === 0;
  }, 2_000, `${what}: the grant released in Redis`);
}

test('signal aborted while the grant waits for replicas: every entry point rejects LockAbortedError (cause: the reason) at once, the grant released', async (t) => {
  const { client, reader, prefix } = await setup(t);
  const locks = newLocks(t, client, { prefix, ...opts });
  for (const [hName, handle] of handles) {
    for (const [eName, entry] of entries) {
      const what = `${hName}.${eName}`;
      const ac = new AbortController();
      const reason = new Error(`stop ${what}`);
      const started = performance.now();
      const call = entry(handle(locks), { signal: ac.signal });
      call.catch(() => undefined);
      await sleep(200); // granted; waiting for the replica
      ac.abort(reason);
      const err = await t.throwsAsync(within(call, 10_000, what), { instanceOf: LockAbortedError }, what);
      const tookMs = performance.now() - started;
      t.is(err?.cause, reason, `${what}: the signal's reason is the cause`);
      t.true(tookMs < BOUND_MS, `${what} answered at the abort: ${Math.round(tookMs)} ms`);
      await released(reader, what);
    }
  }
});

test('close() while the grant waits for replicas: every entry point rejects ClosedError at once, the grant released', async (t) => {
  const { client, reader, prefix } = await setup(t);
  for (const [hName, handle] of handles) {
    for (const [eName, entry] of entries) {
      const what = `${hName}.${eName}`;
      const locks = newLocks(t, client, { prefix, ...opts });
      const started = performance.now();
      const call = entry(handle(locks), {});
      call.catch(() => undefined);
      await sleep(200);
      await within(locks.close(), 5_000, `${what}: close()`);
      const err = await t.throwsAsync(within(call, 10_000, what), { instanceOf: ClosedError }, what);
      t.is(err?.code, 'CLOSED', what);
      const tookMs = performance.now() - started;
      t.true(tookMs < BOUND_MS, `${what} answered at close(): ${Math.round(tookMs)} ms`);
      await released(reader, what);
    }
  }
});

test('timeoutMs runs out while the grant waits for replicas: acquire and using of every primitive reject LockTimeoutError, the grant released', async (t) => {
  const { client, reader, prefix } = await setup(t);
  const locks = newLocks(t, client, { prefix, ...opts });
  for (const [hName, handle] of handles) {
    for (const [eName, entry] of entries.filter(([e]) => e !== 'tryAcquire')) {
      const what = `${hName}.${eName}`;
      const started = performance.now();
      await t.throwsAsync(within(entry(handle(locks), { timeoutMs: 300 }), 10_000, what), { instanceOf: LockTimeoutError }, what);
      const tookMs = performance.now() - started;
      t.true(tookMs < BOUND_MS, `${what} answered at its timeout: ${Math.round(tookMs)} ms`);
      await released(reader, what);
    }
  }
});

test('timeoutMs: 0 with durability is refused at once (InvalidArgumentError), nothing held and no WAIT sent; with replicas 0 it is one attempt as before', async (t) => {
  const { client, reader, prefix } = await setup(t);
  const locks = newLocks(t, client, { prefix, ...opts });
  const byDefault = newLocks(t, client, { prefix, ...opts, durability: DURABLE });
  const before = await waitCalls(client);
  for (const [hName, handle] of handles) {
    const calls: [string, () => Promise<unknown>][] = [
      ['acquire', () => handle(locks).acquire({ timeoutMs: 0, durability: DURABLE })],
      ['using', () => handle(locks).using(() => t.fail('fn must not run'), { timeoutMs: 0, durability: DURABLE })],
      ['acquire, instance durability', () => handle(byDefault).acquire({ timeoutMs: 0 })],
    ];
    for (const [eName, call] of calls) {
      const what = `${hName}.${eName}`;
      const started = performance.now();
      await t.throwsAsync(within(Promise.resolve().then(call), 10_000, what), { instanceOf: InvalidArgumentError, message: /timeoutMs: 0.*durability/ }, what);
      const tookMs = performance.now() - started;
      t.true(tookMs < 1_000, `${what} refused at once: ${Math.round(tookMs)} ms`);
      await released(reader, what);
    }
  }
  t.is(await waitCalls(client), before, 'no WAIT sent');
  const lease = (await within(locks.lock('n').acquire({ timeoutMs: 0, durability: { replicas: 0 } }), 5_000, 'timeoutMs 0, replicas 0')) as Lease;
  t.truthy(lease.token);
  await within(lease.release(), 5_000, 'its release');
});

test('a durable tryAcquire whose signal aborts while its attempt is on the wire rejects LockAbortedError and releases the grant', async (t) => {
  const { client, reader, prefix } = await setup(t);
  const locks = newLocks(t, client, { prefix, ...opts });
  for (const [hName, handle] of handles) {
    const ac = new AbortController();
    const reason = new Error(`stop ${hName}`);
    const started = performance.now();
    const call = handle(locks).tryAcquire({ signal: ac.signal, durability: DURABLE });
    call.catch(() => undefined);
    ac.abort(reason); // before the attempt's reply: the grant comes back to an aborted call
    const err = await t.throwsAsync(within(call, 10_000, hName), { instanceOf: LockAbortedError }, hName);
    t.is(err?.cause, reason, hName);
    t.true(performance.now() - started < BOUND_MS, `${hName} answered at once: ${Math.round(performance.now() - started)} ms`);
    await released(reader, hName);
  }
});
