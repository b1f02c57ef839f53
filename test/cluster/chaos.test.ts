/**
 * A short chaos run on a Redis Cluster (scripts/chaos-cluster.ts): 3 processes lock through cluster
 * clients with durability { replicas: 1 } on a 3-master + 3-replica cluster of the run's own while
 * masters are killed (replica promoted, old master rejoins), failed over, have a busy slot migrated,
 * are cut from the clients by their proxies and lose their replica link, one at a time. The checker
 * (scripts/chaos-check.ts) finds no overlap, no reused or falling token, no FIFO inversion outside
 * a fault's window and no waiter left waiting; every fault kind is seen.
 */
import { runClusterChaos, faultTable, CLUSTER_FAULTS } from '../../scripts/chaos-cluster.js';
import { summary, totalViolations } from '../../scripts/chaos-lib.js';
import { testUnless, withoutShardedPubSub } from '../helpers/server-version.js';

const test = testUnless(withoutShardedPubSub());

test.serial('cluster chaos: every fault kind for ~22 s with durability 1 breaks no property', async (t) => {
  t.timeout(160_000);
  const r = await runClusterChaos(
    { kind: 'lock', durationMs: 22_000, processes: 3, locks: 3, contenders: 2, acquireTimeoutMs: 20_000, log: (l) => t.log(l) },
    { durability: 1, faultEveryMs: 300, everyKindOnce: true },
  );
  t.log(summary(r.result));
  for (const row of faultTable(r)) t.log(row);
  for (const d of r.result.details) t.log(d);
  t.is(totalViolations(r.result), 0);
  t.true(r.result.grants > 20, 'the locks kept changing hands');
  const seen = new Set(r.faults.map((f) => f.kind));
  t.deepEqual(CLUSTER_FAULTS.filter((k) => !seen.has(k)), [], 'every fault kind was injected');
  t.true(r.faults.some((f) => f.nextGrantMs !== null), 'grants went on after the faults');
});
