/**
 * Redis restarts. Killed and restarted empty on the same port: clients reconnect by
 * themselves, holders learn the loss (LockLostError), waiters re-enter the queue and are granted, with
 * tokens above every token handed out before; nothing hangs. Restarted with AOF (appendfsync always):
 * holder and queue survive and the hand-off goes on. FUNCTION FLUSH (a server with Functions, where the
 * engine is a library) or SCRIPT FLUSH (6.2, where it runs by EVALSHA): the next call loads it again.
 */
import test, { type ExecutionContext } from 'ava';
import { disposeAll, spawnChild, stopAll, type Child } from '../helpers/children.js';
import { newLocks, openClient, ownRedis } from '../helpers/cleanup.js';
import { newPrefix } from '../helpers/redis.js';
import type { Event } from '../helpers/worker.js';
import { holders } from '../helpers/state.js';
import { serverVersion } from '../helpers/server-version.js';

// Each test stops its own servers and children (cleanup.ts); this sweeps up any child left over.
test.after.always(() => disposeAll());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tokenOf = (e: Event) => (e.ev === 'granted' ? e.token : NaN);

async function spawn(t: ExecutionContext, url: string, prefix: string, n: number, options: Record<string, number>): Promise<Child[]> {
  return Promise.all(Array.from({ length: n }, () => spawnChild(t, url, prefix, options)));
}

test.serial('restarted empty: the holder sees LockLostError, waiters re-enter and are granted with higher tokens, nothing hangs', async (t) => {
  const server = await ownRedis(t, { owned: true });
  const prefix = newPrefix();
  const opts = { leaseMs: 1000, livenessMs: 1000, heartbeatMs: 200 };
  const [holder, ...waiters] = await spawn(t, server.url, prefix, 4, opts);
  holder!.send({ op: 'acquire', req: 'h', name: 'R' });
  const hTok = tokenOf(await holder!.expect('h', 'granted'));
  for (const [i, w] of waiters.entries()) {
    w.send({ op: 'acquire', req: `w${i}`, name: 'R', timeoutMs: 20_000 });
    await w.expect(`w${i}`, 'queued');
  }
  await server.kill();
  await sleep(300);
  await server.restart();

  await holder!.expect('h', 'lost', 5_000);
  holder!.send({ op: 'release', req: 'h' });
  const rel = await holder!.waitFor((e) => e.req === 'h' && (e.ev === 'error' || e.ev === 'released'));
  t.true(rel.ev === 'error' && rel.code === 'LOCK_LOST', 'release after the loss rejects with LockLostError');

  // Every waiter re-enters (in the order its heartbeat ran, not its old order) and is granted once.
  const tokens: number[] = [];
  await Promise.all(
    waiters.map(async (w, i) => {
      const g = await w.expect(`w${i}`, 'granted', 10_000);
      tokens.push(tokenOf(g));
      w.send({ op: 'release', req: `w${i}` });
      await w.expect(`w${i}`, 'released');
    }),
  );
  t.is(tokens.length, waiters.length);
  t.true(tokens.every((x) => x > hTok), 'tokens after the data loss are above the lost holder\'s');
  t.is(new Set(tokens).size, tokens.length);

  // And the lock works normally afterwards.
  holder!.send({ op: 'acquire', req: 'again', name: 'R', timeoutMs: 5_000 });
  t.true(tokenOf(await holder!.expect('again', 'granted')) > Math.max(...tokens));
  holder!.send({ op: 'release', req: 'again' });
  await holder!.expect('again', 'released');
  await stopAll([holder!, ...waiters]);
});

test.serial('restarted empty: an in-process waiter and holder on a shared client recover by themselves', async (t) => {
  const server = await ownRedis(t, { owned: true });
  const prefix = newPrefix();
  const client = await openClient(t, server.url);
  const a = newLocks(t, client, { prefix, leaseMs: 1000, livenessMs: 1000, heartbeatMs: 200 });
  const b = newLocks(t, client, { prefix, leaseMs: 1000, livenessMs: 1000, heartbeatMs: 200 });
  const lease = await a.lock('X').acquire();
  const waiting = b.lock('X').acquire({ timeoutMs: 10_000 });
  await sleep(100);
  await server.kill();
  await sleep(200);
  await server.restart();
  const lost = await new Promise<Error>((resolve) => {
    if (lease.signal.aborted) resolve(lease.signal.reason as Error);
    else lease.signal.addEventListener('abort', () => resolve(lease.signal.reason as Error), { once: true });
  });
  t.is((lost as { code?: string }).code, 'LOCK_LOST');
  const got = await waiting;
  t.true(got.token > lease.token);
  await got.release();
  await a.close();
  await b.close();
  await client.quit();
});

test.serial('restarted with AOF (appendfsync always): holder and queue survive, the hand-off goes on in order', async (t) => {
  const server = await ownRedis(t, { owned: true, appendonly: true });
  const prefix = newPrefix();
  const opts = { leaseMs: 3000, livenessMs: 3000, heartbeatMs: 300 };
  const [holder, ...waiters] = await spawn(t, server.url, prefix, 3, opts);
  holder!.send({ op: 'acquire', req: 'h', name: 'A' });
  const hTok = tokenOf(await holder!.expect('h', 'granted'));
  for (const [i, w] of waiters.entries()) {
    w.send({ op: 'acquire', req: `w${i}`, name: 'A', timeoutMs: 20_000 });
    await w.expect(`w${i}`, 'queued');
  }
  const admin = await openClient(t, server.url);
  const before = await admin.lRange(`${prefix}:{A}:queue`, 0, -1);
  await server.kill();
  await server.restart();
  t.deepEqual(await admin.lRange(`${prefix}:{A}:queue`, 0, -1), before, 'the queue survived');
  t.deepEqual((await holders(admin, prefix, 'A')).map((h) => h.token), [hTok], 'the holder entry survived');
  await sleep(2 * opts.heartbeatMs);

  holder!.send({ op: 'check', req: 'h' });
  const c = await holder!.expect('h', 'checked');
  t.false(c.ev === 'checked' && c.aborted, 'the holder still holds');
  t.false(waiters.some((w) => w.events.some((e) => e.ev === 'granted')), 'nobody else was granted');
  holder!.send({ op: 'release', req: 'h' });
  await holder!.expect('h', 'released');
  let last = hTok;
  for (const [i, w] of waiters.entries()) {
    const g = await w.expect(`w${i}`, 'granted', 10_000);
    t.true(tokenOf(g) > last, `w${i} granted in order`);
    last = tokenOf(g);
    w.send({ op: 'release', req: `w${i}` });
    await w.expect(`w${i}`, 'released');
  }
  await admin.quit();
  await stopAll([holder!, ...waiters]);
});

const v = serverVersion();
const functions = v.name === 'Valkey' || v.major >= 7;
const FLUSH = functions ? 'FUNCTION FLUSH' : 'SCRIPT FLUSH';

test.serial(`${FLUSH}: the next call loads the engine again, also in the middle of a hand-off`, async (t) => {
  const server = await ownRedis(t);
  const prefix = newPrefix();
  const client = await openClient(t, server.url);
  const admin = await openClient(t, server.url);
  const locks = newLocks(t, client, { prefix, leaseMs: 1000, livenessMs: 1000, heartbeatMs: 200 });
  const cached = async () =>
    functions
      ? ((await admin.sendCommand(['FUNCTION', 'LIST', 'LIBRARYNAME', 'fairlock_*'])) as unknown[]).length
      : Number(/number_of_cached_scripts:(\d+)/.exec(String(await admin.sendCommand(['INFO', 'memory'])))![1]);
  const lock = locks.lock('S');
  await (await lock.acquire()).release();
  t.true((await cached()) > 0);
  await admin.sendCommand(FLUSH.split(' '));
  t.is(await cached(), 0);
  const lease = await lock.acquire();
  t.true((await cached()) > 0, 'reloaded');
  const waiting = lock.acquire({ timeoutMs: 5_000 });
  await sleep(300);
  await admin.sendCommand(FLUSH.split(' ')); // heartbeats and the release meet a missing function (NOSCRIPT on 6.2)
  await sleep(300);
  t.false(lease.signal.aborted, 'renewals went on through the flush');
  await lease.release();
  const next = await waiting;
  t.true(next.token > lease.token);
  await next.release();
  await locks.close();
  await client.quit();
  await admin.quit();
});
