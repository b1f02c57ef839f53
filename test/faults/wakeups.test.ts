/**
 * Lost wake-ups (subscribers killed with CLIENT KILL TYPE pubsub, or Redis paused, at each hand-off) delay
 * a waiter by about one heartbeat at most, and the subscriber reconnects and resubscribes by itself.
 */
import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';
import { wakeChannel } from '../../src/protocol/keys.js';
import type { RedisClient } from '../helpers/redis-client.js';
import { disposeAll, spawnChild } from '../helpers/children.js';
import { newLocks, openClient, openSlowReconnectClient, scopeOf } from '../helpers/cleanup.js';
import { newPrefix, startRedis, type RedisServer } from '../helpers/redis.js';

const OPTS = { leaseMs: 1000, livenessMs: 1000, heartbeatMs: 200 };
const SLACK = 1500;
let server: RedisServer;
test.before(async () => {
  server = await startRedis();
});
test.after.always(async () => {
  await disposeAll();
  await server?.stop();
});

// This process's clock only: a hand-off is stamped here, a child's grant when its event arrives here
// (children.ts `receivedAt`), so "granted N ms after the hand-off" is an upper bound.
const now = () => performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A holder in this process and n child waiters queued in order; `fault` runs before each hand-off. */
async function handOffs(t: ExecutionContext, name: string, n: number, fault: (admin: RedisClient) => Promise<number>) {
  const prefix = newPrefix();
  const admin = await openClient(t, server.url);
  const client = await openClient(t, server.url);
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const lease = await locks.lock(name).acquire();
  const made = await Promise.all(Array.from({ length: n }, () => spawnChild(t, server.url, prefix, OPTS)));
  for (const [i, c] of made.entries()) {
    c.send({ op: 'acquire', req: `w${i}`, name, timeoutMs: 30_000 });
    await c.expect(`w${i}`, 'queued');
  }
  const tokens: number[] = [];
  for (const [i, c] of made.entries()) {
    const extra = await fault(admin);
    const releasedAt = now();
    if (i === 0) await lease.release();
    else made[i - 1]!.send({ op: 'release', req: `w${i - 1}` });
    const g = await c.expect(`w${i}`, 'granted', 10_000);
    const late = g.receivedAt - releasedAt;
    t.true(late <= extra + 2 * OPTS.heartbeatMs + SLACK, `w${i} granted ${late.toFixed(0)} ms after the hand-off`);
    t.log(`w${i} granted ${late.toFixed(0)} ms after the hand-off`);
    if (g.ev === 'granted') tokens.push(g.token);
    for (const other of made.slice(i + 1)) t.false(other.events.some((e) => e.ev === 'granted'), 'one release wakes one waiter');
  }
  made[n - 1]!.send({ op: 'release', req: `w${n - 1}` });
  await made[n - 1]!.expect(`w${n - 1}`, 'released');
  for (let i = 1; i < tokens.length; i++) t.true(tokens[i]! > tokens[i - 1]!);
  return { prefix, admin, made, locks, client };
}

test.serial('CLIENT KILL TYPE pubsub before every hand-off: each waiter is still granted, subscribers come back', async (t) => {
  const { prefix, admin, made, locks, client } = await handOffs(t, 'K', 4, async (admin) => {
    const killed = Number(await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']));
    t.true(killed >= 1);
    return 0;
  });
  // Every child's subscriber is back on its channel, by itself.
  for (let i = 0; i < 50; i++) {
    const subs = await Promise.all(made.map((c) => admin.sendCommand(['PUBSUB', 'NUMSUB', wakeChannel(prefix, c.sessionId)])));
    if (subs.every((s) => Number((s as unknown[])[1]) === 1)) break;
    await sleep(100);
  }
  const channels = (await admin.sendCommand(['PUBSUB', 'CHANNELS', `${prefix}:wake:*`])) as string[];
  t.deepEqual([...channels].sort(), [...made.map((c) => c.sessionId), locks.sessionId].map((id) => wakeChannel(prefix, id)).sort());

  // A later hand-off without faults: granted by the wake-up message again (no heartbeat needed).
  const slow = await spawnChild(t, server.url, prefix, { leaseMs: 10_000, livenessMs: 20_000, heartbeatMs: 10_000 });
  made[0]!.send({ op: 'acquire', req: 'again', name: 'K', timeoutMs: 30_000 });
  await made[0]!.expect('again', 'granted');
  slow.send({ op: 'acquire', req: 's', name: 'K', timeoutMs: 30_000 });
  await slow.expect('s', 'queued');
  await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
  await sleep(1000); // let every subscriber reconnect
  const releasedAt = now();
  made[0]!.send({ op: 'release', req: 'again' });
  const g = await slow.expect('s', 'granted', 8_000);
  t.true(g.receivedAt - releasedAt < 5_000, 'woken by the message, long before its 10 s heartbeat');
  await locks.close();
  await client.quit();
  await admin.quit();
});

test.serial('CLIENT PAUSE (ALL and WRITE) at every hand-off: each waiter is granted once Redis resumes', async (t) => {
  let k = 0;
  const pauseMs = 300;
  const { admin, locks, client } = await handOffs(t, 'P', 4, async (admin) => {
    await admin.sendCommand(['CLIENT', 'PAUSE', String(pauseMs), k++ % 2 === 0 ? 'ALL' : 'WRITE']);
    return pauseMs;
  });
  await locks.close();
  await client.quit();
  await admin.quit();
});

test.serial('a wake-up lost while the subscriber is down for long is recovered by the next heartbeat', async (t) => {
  const prefix = newPrefix();
  const admin = await openClient(t, server.url);
  const holderClient = await openClient(t, server.url);
  // The waiter's subscriber (a duplicate of this client) retries a failed reconnect only every 2 s.
  const waiterClient = await openSlowReconnectClient(t, server.url);
  const holders = newLocks(t, holderClient, { prefix, ...OPTS });
  const waiters = newLocks(t, waiterClient, { prefix, ...OPTS });

  const lease = await holders.lock('L').acquire();
  let queuedAt = 0;
  const pending = waiters.lock('L').acquire({ timeoutMs: 10_000, onQueued: () => (queuedAt = now()) });
  while (!queuedAt) await sleep(5);
  // Kill both subscribers and keep them out: a full server refuses their reconnects for a while.
  const info = await admin.sendCommand(['INFO', 'clients']);
  const connected = Number(/connected_clients:(\d+)/.exec(String(info))![1]);
  const maxclients = (await admin.sendCommand(['CONFIG', 'GET', 'maxclients'])) as string[];
  const subscribers = String(await admin.sendCommand(['CLIENT', 'LIST', 'TYPE', 'pubsub'])).trim().split('\n').length;
  await admin.sendCommand(['CONFIG', 'SET', 'maxclients', String(connected - subscribers)]);
  scopeOf(t).add(() => admin.sendCommand(['CONFIG', 'SET', 'maxclients', maxclients[1]!])); // before admin closes
  t.true(Number(await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub'])) >= 2);
  await sleep(50);
  const channel = wakeChannel(prefix, waiters.sessionId);
  t.is(Number(((await admin.sendCommand(['PUBSUB', 'NUMSUB', channel])) as unknown[])[1]), 0, 'nobody listens: the wake-up will be lost');
  const releasedAt = now();
  await lease.release();
  const got = await pending;
  const late = now() - releasedAt;
  t.log(`granted ${late.toFixed(0)} ms after the lost wake-up`);
  t.true(late < 2_000, 'recovered by the heartbeat, before the subscriber could come back');
  t.true(late <= 2 * OPTS.heartbeatMs + SLACK);
  await got.release();
  await admin.sendCommand(['CONFIG', 'SET', 'maxclients', maxclients[1]!]);
  // The subscriber comes back by itself and resubscribes.
  for (let i = 0; i < 60; i++) {
    if (Number(((await admin.sendCommand(['PUBSUB', 'NUMSUB', channel])) as unknown[])[1]) === 1) break;
    await sleep(100);
  }
  t.is(Number(((await admin.sendCommand(['PUBSUB', 'NUMSUB', channel])) as unknown[])[1]), 1, 'resubscribed');
});
