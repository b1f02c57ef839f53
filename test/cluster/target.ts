/**
 * The property suites' target on a Redis Cluster: a 3-master cluster per test file (started from
 * redis-server processes, stopped by PID), a cluster client of the chosen family, and lock names
 * chosen so that the suite's names land on all three masters.
 */
import type { ExecutionContext } from 'ava';
import type { RedisClientLike } from '../../src/redis/seam.js';
import { escapeName } from '../../src/protocol/keys.js';
import { scopeOf, settleWithin, CLOSE_LIMIT_MS, trackDuplicates } from '../helpers/cleanup.js';
import { adminCommand, keySlot, startRedisCluster, type RedisClusterHandle } from '../helpers/cluster.js';
import { clusterUrl, connectCluster, type TestClient } from '../helpers/clients.js';
import type { RedisClient } from '../helpers/redis-client.js';
import { evalCallsIn, type Target } from '../properties/target.js';
import { testUnless, withoutShardedPubSub } from '../helpers/server-version.js';

const unsupported = withoutShardedPubSub();
/**
 * `test` for the cluster suite: on a server without sharded pub/sub (Redis before 7.0) fairlock
 * refuses waits on a cluster, so every test here is skipped with that reason (the refusal itself is
 * proven by test/cluster/refused-before-7.test.ts, on the 6.2 build).
 */
export const clusterTest = testUnless(unsupported && `${unsupported}; fairlock refuses waits on such a cluster (UNSUPPORTED_SERVER, proven by test/cluster/refused-before-7.test.ts)`);
const test = clusterTest;

export interface ClusterTarget extends Target {
  readonly cluster: RedisClusterHandle;
  /** The master port that owns `name` now. */
  masterOf(name: string): Promise<number>;
}

/** Starts a cluster and a client of family `family` (see clusterFamilies) around the file's tests. */
export function clusterTarget(family: 'redis4' | 'redis6' | 'ioredis5' | 'ioredis6' | 'glide', options: { replicas?: boolean } = {}): ClusterTarget {
  let cluster: RedisClusterHandle | undefined;
  let client: TestClient | undefined;
  test.before(async () => {
    cluster = await startRedisCluster({ replicas: options.replicas ?? false });
    client = await connectCluster(clusterUrl(cluster.startupNodes), family);
    trackDuplicates(client.client as RedisClient);
  });
  test.after.always(async () => {
    if (client) await settleWithin(client.close(), CLOSE_LIMIT_MS);
    if (cluster) await settleWithin(cluster.stop(), CLOSE_LIMIT_MS);
  });
  const need = () => {
    if (!cluster || !client) throw new Error('the cluster target is used before its before() hook ran');
    return { cluster, client };
  };
  return {
    label: ` (cluster, ${family})`,
    test: clusterTest,
    get cluster() {
      return need().cluster;
    },
    get client() {
      return need().client.client;
    },
    get url() {
      return clusterUrl(need().cluster.startupNodes);
    },
    async open(t) {
      const other = await connectCluster(clusterUrl(need().cluster.startupNodes), family);
      trackDuplicates(other.client as RedisClient);
      scopeOf(t).add(() => other.close());
      return other.client;
    },
    name: spreadName,
    masterOf: (name) => need().cluster.ownerOf(`x{${escapeName(name)}}`),
    async killSubscribers() {
      const { cluster } = need();
      for (const node of [...cluster.masters, ...cluster.replicas]) {
        if (node.pid !== undefined) await adminCommand(node.port, ['CLIENT', 'KILL', 'TYPE', 'pubsub']);
      }
    },
    async own(t: ExecutionContext) {
      const own = await startRedisCluster();
      scopeOf(t).add(() => own.stop());
      const c = await connectCluster(clusterUrl(own.startupNodes), family);
      trackDuplicates(c.client as RedisClient);
      scopeOf(t).add(() => c.close());
      const evalCalls = async () => {
        let n = 0;
        for (const m of own.masters) n += evalCallsIn(String(await adminCommand(m.port, ['INFO', 'commandstats'])));
        return n;
      };
      return { client: c.client as RedisClientLike, evalCalls };
    },
  };
}

/**
 * `base` with a suffix that puts it in the third of the slot space given by the base's own hash:
 * a cluster made by startRedisCluster gives each master one third, in order, so different bases
 * land on different masters, deterministically (test/cluster/spread.test.ts checks all three get some).
 */
export function spreadName(base: string): string {
  let h = 0;
  for (const c of base) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const third = h % 3;
  for (let i = 0; i < 1_000; i++) {
    const name = `${base}.${i}`;
    const slot = keySlot(`{${escapeName(name)}}`);
    if ((slot < 5_461 ? 0 : slot < 10_923 ? 1 : 2) === third) return name; // startRedisCluster's ranges
  }
  return base;
}
