/**
 * Self-check of test/helpers/cluster.ts: the topologies it starts are real and behave as its
 * comments say (slots spread over 3 masters, a slot migrates with its keys, a killed master's
 * replica is promoted, Sentinel fails over), so tests built on it can trust it. Timings are logged.
 */
import test from 'ava';
import { Cluster as IORedisCluster, Redis as IORedis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import { startRedisCluster, startSentinelSetup } from '../helpers/cluster.js';

/** Retries `fn` until it resolves: clients need a moment to learn the new topology. Bounded. */
async function eventually<T>(what: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < 200 && Date.now() < deadline; i++) {
    try {
      return await fn();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what} still failing after ${timeoutMs} ms: ${String(last)}`);
}

test('cluster: keys land on all 3 masters; migrateSlot moves a slot with its keys under a live client', async (t) => {
  let started = Date.now();
  const cluster = await startRedisCluster();
  t.teardown(() => cluster.stop());
  t.log(`3-master cluster up in ${Date.now() - started} ms`);

  const client = createCluster({ rootNodes: cluster.rootNodes });
  client.on('error', () => undefined);
  await client.connect();
  t.teardown(() => client.disconnect().catch(() => undefined));

  const keys = Array.from({ length: 30 }, (_, i) => `spread:${i}`);
  for (const k of keys) await client.set(k, k);
  const owners = new Set(await Promise.all(keys.map((k) => cluster.ownerOf(k))));
  t.deepEqual([...owners].sort(), cluster.masters.map((m) => m.port).sort(), 'the keys are spread over the 3 masters');
  for (const m of cluster.masters) {
    const direct = createClient({ url: m.url });
    await direct.connect();
    t.true((await direct.dbSize()) > 0, `master ${m.port} holds keys`);
    for (const k of [...keys, '{tag}a', 'x{}y', '{}{z}']) t.is(cluster.slotOf(k), await direct.clusterKeySlot(k), `slot of ${k}`);
    await direct.quit();
  }

  // 25 keys of one slot move in batches of 5 while a client keeps reading them (ASK redirects).
  const tagged = Array.from({ length: 25 }, (_, i) => `{mig}:${i}`);
  for (const k of tagged) await client.set(k, k);
  const slot = cluster.slotOf('{mig}');
  const from = await cluster.ownerOf('{mig}');
  const to = cluster.masters.find((m) => m.port !== from)!.port;
  let reading = true;
  let reads = 0;
  const reader = (async () => {
    while (reading) {
      for (const k of tagged) t.is(await client.get(k), k, `${k} readable during the migration`);
      reads++;
    }
  })();
  started = Date.now();
  await cluster.migrateSlot(slot, to, { batch: 5, pauseBetweenBatchesMs: 20 });
  t.log(`slot ${slot} (25 keys) migrated ${from} -> ${to} in ${Date.now() - started} ms, ${reads} read rounds meanwhile`);
  reading = false;
  await reader;
  t.is(await cluster.ownerOf('{mig}'), to);
  t.deepEqual(await Promise.all(tagged.map((k) => client.get(k))), tagged, 'the cluster client reads every key after the move');
  const target = createClient({ url: cluster.nodeAt(to).url });
  await target.connect();
  t.is(await target.get('{mig}:0'), '{mig}:0', 'the key is on the new owner itself');
  await target.quit();
  await cluster.waitStable();
});

test('cluster: killMasterOf promotes the replica and a client reads and writes again', async (t) => {
  let started = Date.now();
  const cluster = await startRedisCluster({ replicas: true });
  t.teardown(() => cluster.stop());
  t.log(`3+3 cluster up in ${Date.now() - started} ms`);

  const key = 'failover:k';
  const ownerPort = await cluster.ownerOf(key);
  t.is(cluster.replicas[cluster.masters.findIndex((m) => m.port === ownerPort)]!.pid !== undefined, true);

  // Planned failover first: the key moves to the replica's side without losing a write.
  const direct = createClient({ url: cluster.nodeAt(ownerPort).url });
  await direct.connect();
  await direct.set(key, 'v1');
  await direct.quit();
  started = Date.now();
  const planned = await cluster.failoverFor(key);
  t.log(`planned failover ${planned.oldMasterPort} -> ${planned.newMasterPort} in ${Date.now() - started} ms`);
  t.is(await cluster.ownerOf(key), planned.newMasterPort);

  // ioredis refreshes its slot map when a node goes away (node-redis 4's cluster client does not:
  // its commands for the dead node wait in that node's offline queue).
  const client = new IORedisCluster(cluster.startupNodes, { clusterRetryStrategy: () => 100 });
  client.on('error', () => undefined);
  t.teardown(() => client.disconnect());
  t.is(await client.get(key), 'v1');
  // WAIT on the writing connection: the replica has v2 before the master dies.
  const owner = createClient({ url: cluster.nodeAt(planned.newMasterPort).url });
  await owner.connect();
  await owner.set(key, 'v2');
  t.is(await owner.wait(1, 2_000), 1, 'the replica acknowledged the write');
  await owner.disconnect();

  const killed = await cluster.killMasterOf(key);
  t.log(`kill -9 of ${killed.killedPort}: ${killed.newMasterPort} promoted after ${killed.promotedAfterMs} ms, stable after ${killed.stableAfterMs} ms`);
  t.is(killed.killedPort, planned.newMasterPort);
  t.is(killed.newMasterPort, planned.oldMasterPort);
  t.is(await cluster.ownerOf(key), killed.newMasterPort);
  t.is(await eventually('GET after the failover', () => client.get(key)), 'v2');
  await client.set(key, 'v3');
  t.is(await client.get(key), 'v3');

  // The killed node comes back as a replica of the new master.
  await cluster.nodeAt(killed.killedPort).restart();
  await cluster.waitStable();
  t.is(await cluster.ownerOf(key), killed.newMasterPort);
});

test('sentinel: killMaster promotes the replica and an ioredis sentinel client writes again', async (t) => {
  let started = Date.now();
  const setup = await startSentinelSetup();
  t.teardown(() => setup.stop());
  t.log(`master + replica + 3 sentinels up in ${Date.now() - started} ms`);
  const oldMaster = setup.master.port;
  const replica = setup.replica.port;

  const client = new IORedis({ sentinels: setup.sentinels, name: setup.masterName, maxRetriesPerRequest: null });
  client.on('error', () => undefined);
  t.teardown(() => client.disconnect());
  await client.set('s:k', 'v1');
  t.is(await client.wait(1, 2_000), 1);

  started = Date.now();
  const { newMasterPort, promotedAfterMs } = await setup.killMaster();
  t.log(`sentinel failover ${oldMaster} -> ${newMasterPort}: promoted after ${promotedAfterMs} ms`);
  t.is(newMasterPort, replica);
  t.is(setup.master.port, replica);
  t.is(setup.replica.pid, undefined, 'the old master is dead');
  await eventually('SET through the sentinel client', () => client.set('s:k', 'v2'));
  t.is(await client.get('s:k'), 'v2');
  const direct = createClient({ url: setup.master.url });
  await direct.connect();
  t.is(await direct.get('s:k'), 'v2', 'ioredis followed the sentinels to the new master');
  await direct.quit();
});
