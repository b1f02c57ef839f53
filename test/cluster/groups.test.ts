/**
 * Fair share between groups (DESIGN §7) on a 3-master Redis Cluster, through node-redis 4 and ioredis 5
 * cluster clients. The engine derives a name's group keys (queue:<group>, queue:r, queue:p) inside the
 * Lua script, undeclared: they share the name's hash tag, so they live in its slot on its master, and
 * the script may touch them there. Shown: the rotation and FIFO inside a group, a perGroup cap that
 * holds nobody else back, a cancelled waiter leaving its group, inspect() on the owning master, and
 * no key but each name's state left on any master.
 */
import { clusterTest as test } from './target.js';
import { type FairLocks, type Lease } from '../../src/index.js';
import { lockKeys } from '../../src/protocol/keys.js';
import { newLocks, settleWithin, CLOSE_LIMIT_MS } from '../helpers/cleanup.js';
import { adminCommand, keySlot, startRedisCluster, type RedisClusterHandle } from '../helpers/cluster.js';
import { clusterUrl, connectCluster, type TestClient } from '../helpers/clients.js';
import { whenQueued } from '../helpers/queued.js';
import { newPrefix } from '../helpers/redis.js';
import { within } from '../helpers/bounded.js';

let cluster: RedisClusterHandle | undefined;
const clients: TestClient[] = [];
test.before(async () => {
  cluster = await startRedisCluster();
});
test.after.always(async () => {
  for (const c of clients) await settleWithin(c.close(), CLOSE_LIMIT_MS);
  if (cluster) await settleWithin(cluster.stop(), CLOSE_LIMIT_MS);
});

/** Queues one request; resolves once it is queued (or granted at once), with its grant wrapped. */
async function queue(acquire: (onQueued: (p: number) => void) => Promise<Lease>, what: string): Promise<{ lease: Promise<Lease> }> {
  const q = whenQueued();
  const lease = acquire(q.onQueued);
  lease.catch(() => undefined);
  await within(Promise.race([q.queued, lease]), 10_000, `${what} queued`);
  return { lease };
}

/** Every key under `prefix` on every master, sorted. */
async function keysEverywhere(prefix: string): Promise<string[]> {
  const all: string[] = [];
  for (const m of cluster!.masters) all.push(...((await adminCommand(m.port, ['KEYS', `${prefix}:*`])) as string[]));
  return all.sort();
}

for (const family of ['redis4', 'ioredis5'] as const) {
  test.serial(`${family} cluster client: groups take turns, perGroup caps, cancel, inspect; group keys in the name's slot, none left`, async (t) => {
    const tc = await within(connectCluster(clusterUrl(cluster!.startupNodes), family), 20_000, 'the cluster client');
    clients.push(tc);
    const prefix = newPrefix();
    const locks: FairLocks = newLocks(t, tc.client, { prefix });
    const other: FairLocks = newLocks(t, tc.client, { prefix });

    // The rotation on a lock: x1 x2 x3 | y1 y2 | z1 queued behind a holder, served x y z x y x.
    const lock = locks.lock('deploy');
    const first = await within(lock.acquire({ group: 'x' }), 10_000, 'the first grant');
    const asks: [string, string][] = [['x', 'x1'], ['x', 'x2'], ['x', 'x3'], ['y', 'y1'], ['y', 'y2'], ['z', 'z1']];
    const pending: Promise<Lease>[] = [];
    for (const [group, label] of asks) pending.push((await queue((onQueued) => other.lock('deploy').acquire({ group, onQueued }), label)).lease);
    // A waiter of group c that gives up (abort) leaves its group and the rotation.
    const ac = new AbortController();
    const gone = (await queue((onQueued) => other.lock('deploy').acquire({ group: 'c', signal: ac.signal, onQueued }), 'c1')).lease;
    let info = await locks.inspect('deploy');
    t.deepEqual(info.groups.map((g) => [g.group, g.held, g.waiting]), [['x', 1, 3], ['y', 0, 2], ['z', 0, 1], ['c', 0, 1]]);
    ac.abort();
    await t.throwsAsync(gone);
    info = await locks.inspect('deploy');
    t.deepEqual(info.groups.map((g) => [g.group, g.waiting]), [['x', 3], ['y', 2], ['z', 1]], 'c left with its only waiter');
    t.deepEqual(info.queue.map((w) => [w.group, w.position]), [['x', 1], ['x', 2], ['x', 3], ['y', 1], ['y', 2], ['z', 1]]);

    // The group keys the engine made (undeclared) sit on the master that owns the name's slot.
    const keys = lockKeys(prefix, 'deploy');
    const owner = await cluster!.ownerOf(keys.state);
    const onOwner = ((await adminCommand(owner, ['KEYS', `${prefix}:*`])) as string[]).sort();
    const hex = (g: string) => Buffer.from(g).toString('hex');
    t.deepEqual(onOwner, [keys.state, `${keys.queue}:${hex('x')}`, `${keys.queue}:${hex('y')}`, `${keys.queue}:${hex('z')}`, `${keys.queue}:r`].sort());
    t.true(onOwner.every((k) => keySlot(k) === keySlot(keys.state)), 'one slot');

    await first.release();
    const order: string[] = [];
    const settled = await within(
      Promise.all(
        pending.map((p, i) =>
          p.then(async (l) => {
            order.push(asks[i]![1]);
            await l.release();
            return l;
          }),
        ),
      ),
      20_000,
      'every grant of the rotation',
    );
    t.deepEqual(order, ['x1', 'y1', 'z1', 'x2', 'y2', 'x3']);
    t.deepEqual([...settled].sort((a, b) => a.token - b.token).map((l) => asks[settled.indexOf(l)]![1]), order, 'tokens follow the rotation');

    // perGroup on a semaphore (another name, maybe another master): a at its cap waits, b is not held back.
    const gpu = locks.semaphore('gpu', { permits: 3, perGroup: 1 });
    const a1 = await within(gpu.acquire({ group: 'a' }), 10_000, 'a1');
    const a2 = (await queue((onQueued) => other.semaphore('gpu', { permits: 3, perGroup: 1 }).acquire({ group: 'a', onQueued }), 'a2')).lease;
    const b1 = await within(gpu.acquire({ group: 'b', timeoutMs: 5_000 }), 10_000, 'b1, past the capped a');
    t.is(b1.group, 'b');
    t.is(await gpu.tryAcquire({ group: 'd' }), null, 'no barging past the queued a2');
    const gi = await locks.inspect('gpu');
    t.is(gi.perGroup, 1);
    t.deepEqual(gi.groups.map((g) => [g.group, g.held, g.waiting]).sort(), [['a', 1, 1], ['b', 1, 0]]);
    await a1.release();
    const l2 = await within(a2, 10_000, "a's next, once a1 ended");
    t.true(l2.token > b1.token);
    await Promise.all([l2.release(), b1.release()]);

    const left = await keysEverywhere(prefix);
    t.deepEqual(left, [keys.state, lockKeys(prefix, 'gpu').state].sort(), 'only the states are left, on any master');
  });
}
