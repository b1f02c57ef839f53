/**
 * Each durable call is bounded by its own durability.timeoutMs, whatever the process's other durable
 * calls do: concurrent confirmations do not queue behind each other's WAIT, and a WAIT whose caller gave
 * up delays nobody. (The replica is SIGSTOPped with its link cut, so no WAIT can be met.)
 */
import test, { type ExecutionContext } from 'ava';
import { performance } from 'node:perf_hooks';
import { ClosedError, LockAbortedError, LockTimeoutError, NotReplicatedError, type FairLocks } from '../src/index.js';
import { newLocks, track } from './helpers/cleanup.js';
import { clientFamilies } from './helpers/clients.js';
import { field, info, replicated, waitCalls, type Pair } from './helpers/replicated.js';
import { newPrefix } from './helpers/redis.js';
import { within, until } from './helpers/bounded.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const opts = { heartbeatMs: 100, livenessMs: 1_000, leaseMs: 5_000 };
/** What each call may take beyond its own timeout: far less than one more timeout queued in front of it. */
const MARGIN_MS = 1_500;

/** A FairLocks on the master through node-redis (the helper's client) or ioredis 5. */
async function locksOn(t: ExecutionContext, pair: Pair, family: 'node-redis' | 'ioredis', prefix: string): Promise<FairLocks> {
  if (family === 'node-redis') return newLocks(t, pair.client, { prefix, ...opts });
  const io = clientFamilies(pair.master.url).find((f) => f.id === 'ioredis5')!;
  const client = await io.connect();
  track(t, { dispose: () => client.close() });
  return newLocks(t, client.client, { prefix, ...opts });
}

/** Warms the script cache (a cold cache sends EVAL, which costs nothing here but keeps the runs alike). */
async function warm(locks: FairLocks): Promise<void> {
  await within((await within(locks.lock('warm-up').acquire(), 5_000, 'a warm-up grant')).release(), 5_000, 'its release');
}

for (const family of ['node-redis', 'ioredis'] as const) {
  test(`${family}: 6 concurrent durable acquires on 6 names against a stopped replica: each rejects NOT_REPLICATED within its own timeout, its name free`, async (t) => {
    const pair = await replicated(t);
    const prefix = newPrefix();
    const locks = await locksOn(t, pair, family, prefix);
    const reader = newLocks(t, await pair.another(), { prefix, ...opts });
    await warm(locks);
    await pair.cut();
    const timeoutMs = 600;
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const waitsBefore = await waitCalls(pair.client);
    const started = performance.now();
    // Queued one after the other, the last would be answered after 6 x 600 ms = 3.6 s.
    const answered = await Promise.all(
      names.map(async (name) => {
        const err = await t.throwsAsync(within(locks.lock(name).acquire({ durability: { replicas: 1, timeoutMs } }), 10_000, name), { instanceOf: NotReplicatedError });
        const tookMs = performance.now() - started;
        t.is(err?.code, 'NOT_REPLICATED');
        // Free in Redis once its own call was answered, not once every other call was.
        await until(async () => (await reader.inspect(name)).holders.length === 0, 1_000, `${name} released`);
        return { name, tookMs, freeMs: performance.now() - started };
      }),
    );
    t.log(answered.map((a) => `${a.name} ${Math.round(a.tookMs)}/${Math.round(a.freeMs)} ms`).join(', '));
    t.log(`WAIT commands for the 6 confirmations: ${(await waitCalls(pair.client)) - waitsBefore} (concurrent ones share one)`);
    for (const a of answered) {
      t.true(a.tookMs >= timeoutMs - 50, `${a.name} waited for its WAIT: ${Math.round(a.tookMs)} ms`);
      t.true(a.tookMs < timeoutMs + MARGIN_MS, `${a.name} answered within its own timeout: ${Math.round(a.tookMs)} ms`);
      t.true(a.freeMs < timeoutMs + MARGIN_MS + 500, `${a.name} free in Redis early: ${Math.round(a.freeMs)} ms`);
    }
  });
}

test('an abandoned WAIT (acquire aborted, acquire timed out) does not delay later durable calls (acquire, tryAcquire)', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const locks = newLocks(t, pair.client, { prefix, ...opts });
  const reader = newLocks(t, await pair.another(), { prefix, ...opts });
  await warm(locks);
  await pair.cut();
  const long = { replicas: 1, timeoutMs: 8_000 };
  const short = { replicas: 1, timeoutMs: 500 };

  // Aborted while its WAIT of 8 s is in flight.
  const ac = new AbortController();
  const aborted = locks.lock('aborted').acquire({ signal: ac.signal, durability: long });
  aborted.catch(() => undefined);
  await sleep(300);
  ac.abort();
  await t.throwsAsync(within(aborted, 3_000, 'the aborted acquire'), { instanceOf: LockAbortedError });
  // A later durable call against the stalled replica: answered by its own short timeout.
  const answeredOnTime = async (call: () => Promise<unknown>, what: string, label: string) => {
    const started = performance.now();
    await t.throwsAsync(within(call(), 10_000, what), { instanceOf: NotReplicatedError });
    const tookMs = performance.now() - started;
    t.true(tookMs < short.timeoutMs + MARGIN_MS, `${label} after an abandoned WAIT: ${Math.round(tookMs)} ms`);
  };
  await answeredOnTime(() => locks.lock('after-abort').acquire({ durability: short }), 'acquire after the abort', 'acquire');

  // Timed out while its WAIT of 8 s is in flight.
  await t.throwsAsync(within(locks.lock('timed-out').acquire({ timeoutMs: 300, durability: long }), 3_000, 'the timed-out acquire'), { instanceOf: LockTimeoutError });
  await answeredOnTime(() => locks.lock('after-timeout').tryAcquire({ durability: short }), 'tryAcquire after the timeout', 'tryAcquire');

  for (const name of ['aborted', 'after-abort', 'timed-out', 'after-timeout']) {
    await until(async () => (await reader.inspect(name)).holders.length === 0, 2_000, `${name} released`);
  }
  t.pass();
});

test('concurrent durable calls with different timeouts: each answered by its own timeout, the short ones not behind the long one', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const locks = newLocks(t, pair.client, { prefix, ...opts });
  const reader = newLocks(t, await pair.another(), { prefix, ...opts });
  await warm(locks);
  await pair.cut();
  // Queued in this order the 300 ms ones would be answered after 1.5 s or more.
  const timeouts = [1_500, 300, 900, 300, 600];
  const started = performance.now();
  const answered = await Promise.all(
    timeouts.map(async (timeoutMs, i) => {
      const name = `m${i}`;
      const call = i % 2 === 0 ? locks.lock(name).acquire({ durability: { replicas: 1, timeoutMs } }) : locks.lock(name).tryAcquire({ durability: { replicas: 1, timeoutMs } });
      await t.throwsAsync(within(call, 10_000, name), { instanceOf: NotReplicatedError });
      return { name, timeoutMs, tookMs: performance.now() - started };
    }),
  );
  t.log(answered.map((a) => `${a.name} (${a.timeoutMs}) ${Math.round(a.tookMs)} ms`).join(', '));
  for (const a of answered) {
    t.true(a.tookMs >= a.timeoutMs - 50, `${a.name} waited for its own timeout: ${Math.round(a.tookMs)} ms`);
    t.true(a.tookMs < a.timeoutMs + 1_000, `${a.name} answered within its own timeout ${a.timeoutMs}: ${Math.round(a.tookMs)} ms`);
  }
  for (const a of answered) await until(async () => (await reader.inspect(a.name)).holders.length === 0, 2_000, `${a.name} released`);
});

/** Clients connected to the master now (INFO clients). */
async function connected(pair: Pair): Promise<number> {
  return Number(field(await info(pair.client, 'clients'), 'connected_clients'));
}

test('the WAIT connections are bounded: 10 calls that cannot share a WAIT (replicas 1..10) use at most 8, each answered within its own timeout', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const base = await connected(pair);
  const locks = newLocks(t, pair.client, { prefix, ...opts });
  await warm(locks); // the subscriber and one WAIT-free round: no WAIT connection yet
  await pair.cut();
  const timeoutMs = 1_000;
  const started = performance.now();
  const calls = Array.from({ length: 10 }, (_, i) => locks.lock(`r${i}`).acquire({ durability: { replicas: i + 1, timeoutMs } }));
  for (const c of calls) c.catch(() => undefined);
  await sleep(500); // every WAIT that could be sent is in flight
  const during = (await connected(pair)) - base;
  t.log(`connections made by the FairLocks while 10 WAITs were asked: ${during} (subscriber included)`);
  t.true(during <= 1 + 8, `at most 8 WAIT connections and the subscriber: ${during}`);
  for (const [i, c] of calls.entries()) {
    const err = await t.throwsAsync(within(c, 10_000, `r${i}`), { instanceOf: NotReplicatedError });
    t.is(err?.required, i + 1);
  }
  const tookMs = performance.now() - started;
  t.true(tookMs < timeoutMs + MARGIN_MS, `all answered within their timeout: ${Math.round(tookMs)} ms`);
});

test('close() while several WAITs are in flight: every call rejects ClosedError, and every connection the FairLocks made is closed, within its bound', async (t) => {
  const pair = await replicated(t);
  const prefix = newPrefix();
  const base = await connected(pair);
  const locks = newLocks(t, pair.client, { prefix, ...opts });
  await warm(locks);
  await pair.cut();
  // Different replica counts cannot share a WAIT: three connections, each in a WAIT of 8 s.
  const calls = [1, 2, 3].map((replicas) => locks.lock(`c${replicas}`).acquire({ durability: { replicas, timeoutMs: 8_000 } }));
  for (const c of calls) c.catch(() => undefined);
  await sleep(400);
  t.true((await connected(pair)) - base >= 3, 'several WAIT connections in use');
  const started = performance.now();
  await within(locks.close(), 5_000, 'close()');
  t.true(performance.now() - started < 3_000, `close() returned before the WAITs ran out: ${Math.round(performance.now() - started)} ms`);
  for (const c of calls) await t.throwsAsync(within(c, 5_000, 'a call'), { instanceOf: ClosedError });
  await until(async () => (await connected(pair)) === base, 3_000, 'every connection of the FairLocks closed');
  t.pass();
});
