/** The lock's property suite on a 3-master Redis Cluster, through node-redis 4's createCluster(). */
import { adminCommand } from '../helpers/cluster.js';
import { propertySuite, SUITE_NAMES } from '../properties/suite.js';
import { SUBJECTS } from '../properties/subjects.js';
import { clusterTarget, clusterTest as test } from './target.js';

const target = clusterTarget('redis4');
propertySuite(SUBJECTS[0]!, target);

test('the suite\'s lock names land on all three masters of the cluster', async (t) => {
  const owners = new Set(await Promise.all(SUITE_NAMES.map((base) => target.masterOf(target.name(base)))));
  t.deepEqual([...owners].sort(), target.cluster.masters.map((m) => m.port).sort());
});

test('the helper\'s slot function agrees with CLUSTER KEYSLOT (hash tags included)', async (t) => {
  const port = target.cluster.masters[0]!.port;
  for (const key of ['plain', '{tag}a', 'x{}y', '{}{z}', 'fairlock:{a%7Bb}:state', `x{${target.name('fifo')}}`]) {
    t.is(target.cluster.slotOf(key), Number(await adminCommand(port, ['CLUSTER', 'KEYSLOT', key])), key);
  }
});
