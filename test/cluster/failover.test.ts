/**
 * Failovers on a 3-master cluster with replicas, through ioredis 5 Cluster and node-redis 6
 * createCluster: a planned CLUSTER FAILOVER mid hand-off loses nothing; kill -9 of a master whose replica
 * missed the last writes tells the holder, the waiter re-enters, tokens rise; a durable grant (WAIT 1)
 * survives kill -9 of its master.
 */
import type { ExecutionContext } from 'ava';
import { clusterTest as test } from './target.js';
import { performance } from 'node:perf_hooks';
import { FairLocks, LockLostError, NotReplicatedError, type Lease } from '../../src/index.js';
import { escapeName } from '../../src/protocol/keys.js';
import { newLocks, settleWithin, CLOSE_LIMIT_MS, scopeOf } from '../helpers/cleanup.js';
import { adminCommand, startRedisCluster, type RedisClusterHandle } from '../helpers/cluster.js';
import { clusterUrl, connectCluster } from '../helpers/clients.js';
import { whenAborted, whenQueued } from '../helpers/queued.js';
import { newPrefix } from '../helpers/redis.js';
import { within } from '../helpers/bounded.js';

type Family = 'ioredis5' | 'redis6';
const FAMILIES: Family[] = ['ioredis5', 'redis6'];
const opts = { heartbeatMs: 200, livenessMs: 1_000, leaseMs: 4_000 };

let cluster: RedisClusterHandle | undefined;
test.before(async () => {
  cluster = await startRedisCluster({ replicas: true });
});
test.after.always(async () => {
  if (cluster) await settleWithin(cluster.stop(), CLOSE_LIMIT_MS);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Three FairLocks, each on a cluster client of its own (three sessions, as three services would be). */
async function sessions(t: ExecutionContext, family: Family, prefix: string, extra: object = {}): Promise<FairLocks[]> {
  const url = clusterUrl(cluster!.startupNodes);
  const out: FairLocks[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await connectCluster(url, family);
    scopeOf(t).add(() => c.close());
    out.push(newLocks(t, c.client, { prefix, ...opts, ...extra }));
  }
  return out;
}

/** The master that owns `name` now, and its connected replica. */
async function placesOf(name: string): Promise<{ master: number; replica: number; replicaPid: number }> {
  const master = await cluster!.ownerOf(`{${escapeName(name)}}`);
  const replica = await cluster!.replicaOf(master);
  return { master, replica: replica.port, replicaPid: replica.pid! };
}

/** After a test killed a master: start it again (it rejoins as a replica) so the next test has a whole cluster. */
async function heal(port: number): Promise<void> {
  if (cluster!.nodeAt(port).pid === undefined) await cluster!.nodeAt(port).restart();
  await cluster!.waitStable(20_000);
}

for (const family of FAMILIES) {
  test.serial(`${family}: a planned CLUSTER FAILOVER while a hand-off is in flight loses nothing`, async (t) => {
    const prefix = newPrefix();
    const name = `planned-${family}`;
    const [a, b, c] = await sessions(t, family, prefix);
    const lost: string[] = [];
    for (const l of [a!, b!, c!]) l.on('lost', (lease) => lost.push(lease.id));
    const holder = await within(a!.lock(name).acquire(), 20_000, 'the first grant');
    const q1 = whenQueued();
    const first = b!.lock(name).acquire({ timeoutMs: 30_000, onQueued: q1.onQueued });
    await within(q1.queued, 20_000, 'the first waiter queued');
    const q2 = whenQueued();
    const second = c!.lock(name).acquire({ timeoutMs: 30_000, onQueued: q2.onQueued });
    await within(q2.queued, 20_000, 'the second waiter queued');
    const { master } = await placesOf(name);

    const failover = cluster!.failoverFor(`{${name}}`);
    const released = holder.release();
    const [{ oldMasterPort, newMasterPort }] = await Promise.all([within(failover, 20_000, 'the failover'), within(released, 20_000, 'the release')]);
    t.is(oldMasterPort, master);
    const l1 = await within(first, 20_000, 'the first waiter');
    t.true(l1.token > holder.token, 'the hand-off token rises');
    await within(l1.release(), 20_000, 'the first release');
    const l2 = await within(second, 20_000, 'the second waiter');
    t.true(l2.token > l1.token);
    await within(l2.release(), 20_000, 'the second release');
    t.is(await cluster!.ownerOf(`{${name}}`), newMasterPort, 'the name now lives on the promoted replica');
    const info = await a!.inspect(name);
    t.deepEqual([info.holders.length, info.queue.length], [0, 0]);
    t.deepEqual(lost, [], 'no lease was lost: a planned failover waits for the replica');
  });

  test.serial(`${family}: kill -9 of a master whose replica missed the last writes: the holder told, the waiter re-enters, tokens rise`, async (t) => {
    const prefix = newPrefix();
    const name = `killed-${family}`;
    const [w1, w2] = await sessions(t, family, prefix);
    const { master, replicaPid } = await placesOf(name);
    let stopped = false;
    scopeOf(t).add(() => {
      if (stopped) process.kill(replicaPid, 'SIGCONT');
    });
    // Each session connects its wake-up subscriber first: node-redis 6 connects a new cluster
    // client to every node, and would wait for the paused replica below.
    for (const w of [w1!, w2!]) await within(w.lock(name).acquire().then((l) => l.release()), 20_000, 'the warm-up');
    // The replica is paused and its link cut (a paused process still receives into its socket
    // buffer, so SIGSTOP alone loses nothing): the grant and the enqueue below reach the master
    // only, as asynchronous replication allows when a master dies before it sent them on.
    process.kill(replicaPid, 'SIGSTOP');
    stopped = true;
    await adminCommand(master, ['CLIENT', 'KILL', 'TYPE', 'replica']);
    const l1 = await within(w1!.lock(name).acquire(), 20_000, 'the grant');
    const l1Lost = whenAborted(l1.signal);
    const q2 = whenQueued();
    const second = w2!.lock(name).acquire({ timeoutMs: 60_000, onQueued: q2.onQueued });
    second.catch(() => undefined); // awaited below; a failed step must not leave it unhandled
    await within(q2.queued, 20_000, 'the waiter queued');

    const killedAt = performance.now();
    scopeOf(t).add(() => heal(master)); // whatever happens below, the next test gets a whole cluster
    await within(cluster!.nodeAt(master).kill('SIGKILL'), 10_000, 'the kill');
    process.kill(replicaPid, 'SIGCONT');
    stopped = false;

    // The promoted replica knows nothing of the name: the holder learns that its lease is gone
    // (its beat finds no grant, or its deadline passes first), the waiter's beat finds its entry
    // gone and it re-enters, and is granted with a token above the lost one.
    const reason = await within(l1Lost, 30_000, 'the loss report of the grant that was not replicated');
    const lostAfterMs = performance.now() - killedAt;
    t.true(reason instanceof LockLostError, `the holder is told: ${String(reason)}`);
    const l2: Lease = await within(second, 30_000, 'the waiter after the failover');
    const grantAfterMs = performance.now() - killedAt;
    t.true(l2.token > l1.token, `tokens rise across the failover: ${l1.token} < ${l2.token}`);
    await t.throwsAsync(within(l1.release(), 20_000, 'the release of the lost lease'), { instanceOf: LockLostError });
    t.log(`${family}: loss reported ${Math.round(lostAfterMs)} ms (${(reason as Error).message.replace(/.*: /, '')}), the next grant ${Math.round(grantAfterMs)} ms after the kill`);
    await within(l2.release(), 20_000, 'the last release');
  });
}

test.serial('ioredis5: a durable grant (WAIT 1) survives kill -9 of its master', async (t) => {
  const prefix = newPrefix();
  const name = 'durable-ioredis5';
  const [a, b, c] = await sessions(t, 'ioredis5', prefix, { durability: { replicas: 1, timeoutMs: 2_000 } });
  const holder = await within(a!.lock(name).acquire(), 20_000, 'the first grant');
  const q = whenQueued();
  const next = b!.lock(name).acquire({ timeoutMs: 30_000, onQueued: q.onQueued });
  next.catch(() => undefined);
  await within(q.queued, 20_000, 'the waiter queued');
  await within(holder.release(), 20_000, 'the release');
  const lease = await within(next, 20_000, 'the durable hand-off');
  const { master } = await placesOf(name);
  scopeOf(t).add(() => heal(master));
  const { killedPort, promotedAfterMs } = await within(cluster!.killMasterOf(`{${name}}`), 40_000, 'the automatic failover');
  t.is(killedPort, master);
  t.log(`replica promoted ${promotedAfterMs} ms after the kill`);
  // A few heartbeats on the new master: the grant is there, so nothing is reported lost.
  const info = await within(
    (async () => {
      for (let i = 0; i < 100; i++) {
        try {
          const r = await a!.inspect(name);
          if (r.holders.length > 0) return r;
        } catch {
          // the client is still learning the new topology
        }
        await sleep(100);
      }
      throw new Error('no holder on the new master');
    })(),
    15_000,
    'inspect on the new master',
  );
  t.deepEqual(info.holders.map((h) => [h.id, h.token]), [[lease.id, lease.token]], 'the promoted replica has the durable grant');
  await sleep(3 * opts.heartbeatMs);
  t.false(lease.signal.aborted, 'the holder keeps its lease');
  await within(lease.release(), 20_000, 'the durable lease\'s release');
  // The promoted master has no replica left: a durable grant cannot be proven, so it is refused
  // (and released); without durability the name goes on, tokens rising.
  const refused = await t.throwsAsync(within(c!.lock(name).acquire({ timeoutMs: 20_000 }), 25_000, 'the refused grant'), { instanceOf: NotReplicatedError });
  t.is(refused?.acked, 0);
  t.is((await a!.inspect(name)).holders.length, 0, 'the refused grant was released');
  const after = await within(c!.lock(name).acquire({ timeoutMs: 20_000, durability: { replicas: 0 } }), 25_000, 'the next grant');
  t.true(after.token > lease.token);
  await within(after.release(), 20_000, 'the last release');
});
