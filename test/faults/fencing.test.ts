/**
 * Fencing tokens protect a store end to end: a stale holder's late write is rejected by a store that
 * refuses tokens below the highest seen, and tokens keep rising across a restart that lost all data
 * (tickets are seeded from Redis TIME).
 */
import test from 'ava';
import { disposeAll, spawnChild, stopAll } from '../helpers/children.js';
import { newLocks, openClient, ownRedis } from '../helpers/cleanup.js';
import { fencedLog, fencedWrite } from '../helpers/fenced.js';
import { newPrefix } from '../helpers/redis.js';

const OPTS = { leaseMs: 400, livenessMs: 600, heartbeatMs: 150 };
// Each test stops its own servers and children (cleanup.ts); this sweeps up any child left over.
test.after.always(() => disposeAll());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('a paused holder that writes after resuming is rejected by the fenced store; the new holder\'s write stands', async (t) => {
  const server = await ownRedis(t);
  const prefix = newPrefix();
  const store = `${prefix}:store`;
  const [holder, next] = await Promise.all([spawnChild(t, server.url, prefix, OPTS), spawnChild(t, server.url, prefix, OPTS)]);
  holder.send({ op: 'acquire', req: 'h', name: 'F' });
  await holder.expect('h', 'granted');
  holder.send({ op: 'write', req: 'h', key: store, value: 'holder-1' });
  const w1 = await holder.expect('h', 'wrote');
  t.true(w1.ev === 'wrote' && w1.accepted && !w1.aborted);

  next.send({ op: 'acquire', req: 'n', name: 'F', timeoutMs: 20_000 });
  await next.expect('n', 'queued');
  holder.signal('SIGSTOP'); // e.g. a long GC pause in the middle of the critical section
  await next.expect('n', 'granted', 10_000);
  next.send({ op: 'write', req: 'n', key: store, value: 'next-1' });
  const n1 = await next.expect('n', 'wrote');
  t.true(n1.ev === 'wrote' && n1.accepted);

  await sleep(OPTS.leaseMs);
  holder.send({ op: 'write', req: 'h', key: store, value: 'holder-2 (stale)' });
  holder.signal('SIGCONT');
  const w2 = await holder.waitFor((e) => e.req === 'h' && e.ev === 'wrote' && e !== w1);
  t.true(w2.ev === 'wrote' && w2.aborted, 'the stale holder could have known: its signal was aborted');
  t.true(w2.ev === 'wrote' && !w2.accepted, 'the stale write was rejected');

  const client = await openClient(t, server.url);
  t.deepEqual((await fencedLog(client, store)).map((e) => e.value), ['holder-1', 'next-1']);
  await client.quit();
  await stopAll([holder, next]);
});

test.serial('tokens strictly increase across Redis restarts that lost all data', async (t) => {
  const server = await ownRedis(t, { owned: true }); // no AOF, no RDB: a restart comes back empty
  const storeServer = await ownRedis(t, { owned: true }); // the fenced store outlives the lock server
  const prefix = newPrefix();
  const client = await openClient(t, server.url);
  const storeClient = await openClient(t, storeServer.url);
  const locks = newLocks(t, client, { prefix, ...OPTS });
  const lock = locks.lock('T');
  const tokens: number[] = [];
  const take = async () => {
    const lease = await lock.acquire({ timeoutMs: 10_000 });
    tokens.push(lease.token);
    t.true(await fencedWrite(storeClient, `${prefix}:store`, lease.token, `t${tokens.length}`), `write with token ${lease.token} accepted`);
    await lease.release();
  };
  await take();
  await take();
  for (let round = 0; round < 2; round++) {
    await server.kill();
    await server.restart();
    t.is(await client.dbSize(), 0, 'the restarted server lost every key');
    await take();
    await take();
  }
  for (let i = 1; i < tokens.length; i++) t.true(tokens[i]! > tokens[i - 1]!, `token ${i} (${tokens[i]}) > token ${i - 1} (${tokens[i - 1]})`);
  t.true(tokens.every((x) => Number.isSafeInteger(x)));
  t.is((await fencedLog(storeClient, `${prefix}:store`)).length, tokens.length);
  await locks.close();
  await client.quit();
  await storeClient.quit();
});
