/**
 * Fencing end to end (DESIGN §2.1): a fenced store that rejects a write with a token lower than the
 * highest it has seen turns a stale holder's late write into a rejected one; and tokens keep rising
 * across a Redis restart that lost all data (tickets are seeded from Redis TIME).
 */
import test from 'ava';
import { FairLocks } from '../../src/index.js';
import { spawnChild, stopAll, type Child } from '../helpers/children.js';
import { fencedLog, fencedWrite } from '../helpers/fenced.js';
import { connect, newPrefix, startRedis, type RedisServer } from '../helpers/redis.js';

const OPTS = { leaseMs: 400, livenessMs: 600, heartbeatMs: 150 };
const servers: RedisServer[] = [];
const children: Child[] = [];
test.after.always(async () => {
  for (const c of children) c.signal('SIGCONT');
  await stopAll(children);
  await Promise.all(servers.map((s) => s.stop()));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('a paused holder that writes after resuming is rejected by the fenced store; the new holder\'s write stands', async (t) => {
  const server = await startRedis();
  servers.push(server);
  const prefix = newPrefix();
  const store = `${prefix}:store`;
  const [holder, next] = await Promise.all([spawnChild(server.url, prefix, OPTS), spawnChild(server.url, prefix, OPTS)]);
  children.push(holder, next);
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

  const client = await connect(server.url);
  t.deepEqual((await fencedLog(client, store)).map((e) => e.value), ['holder-1', 'next-1']);
  await client.quit();
  await stopAll([holder, next]);
});

test.serial('tokens strictly increase across Redis restarts that lost all data', async (t) => {
  const server = await startRedis({ owned: true }); // no AOF, no RDB: a restart comes back empty
  const storeServer = await startRedis({ owned: true }); // the fenced store outlives the lock server
  servers.push(server, storeServer);
  const prefix = newPrefix();
  const client = await connect(server.url);
  const storeClient = await connect(storeServer.url);
  const locks = new FairLocks(client, { prefix, ...OPTS });
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
