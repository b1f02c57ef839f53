/**
 * What a wake-up costs on a Redis Cluster by way of classic PUBLISH (the only pub/sub before Redis
 * 7.0) and by way of sharded SPUBLISH (7.0): not part of `npm run bench`; it decided how fairlock
 * treats a cluster without sharded pub/sub (README, "Supported servers").
 *   npx tsx scripts/bench/cluster-pubsub.ts [--messages 2000]
 * uses the redis-server first on PATH (PATH=../shared/servers/redis-6.2.16:$PATH for 6.2).
 *
 * A 3-master cluster with one replica each. One subscriber connection on one master, one publisher
 * on the master that owns the channel's slot; MESSAGES wake-ups sent one at a time, each awaited by
 * the subscriber before the next goes (this process's one clock times it, publish to receipt).
 * Per message: the cluster-bus messages each node sent and received for it (CLUSTER INFO
 * cluster_stats_messages_publish*_sent/received, read before and after), with PUBLISH (subscriber
 * on another master: PUBLISH reaches every node) and, on 7.0, with SPUBLISH (subscriber on the
 * owner: the message stays in the shard). Bounded: each message waits at most 2 s; every
 * redis-server is stopped by PID.
 */
import { createClient } from 'redis';
import { adminCommand, startRedisCluster } from '../../test/helpers/cluster.js';
import { hasShardedPubSub, serverVersion } from '../../test/helpers/server-version.js';
import { dist } from './stats.js';

const arg = process.argv.indexOf('--messages');
const MESSAGES = arg > 0 ? Number(process.argv[arg + 1]) : 2_000;
if (!Number.isInteger(MESSAGES) || MESSAGES < 1 || MESSAGES > 100_000) throw new Error('--messages: an integer from 1 to 100000');

async function busCounters(ports: number[], kind: 'publish' | 'publishshard'): Promise<{ sent: number; received: number }[]> {
  return Promise.all(
    ports.map(async (port) => {
      const info = String(await adminCommand(port, ['CLUSTER', 'INFO']));
      const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
      return { sent: field(`cluster_stats_messages_${kind}_sent`), received: field(`cluster_stats_messages_${kind}_received`) };
    }),
  );
}

async function run(cluster: Awaited<ReturnType<typeof startRedisCluster>>, sharded: boolean): Promise<void> {
  const channel = 'fl:{bench}:wake:session';
  const owner = await cluster.ownerOf(channel);
  const other = cluster.masters.find((m) => m.port !== owner)!.port;
  const pub = createClient({ url: `redis://127.0.0.1:${owner}` });
  const sub = createClient({ url: `redis://127.0.0.1:${sharded ? owner : other}` });
  await Promise.all([pub.connect(), sub.connect()]);
  let got: (() => void) | undefined;
  const listener = () => got?.();
  if (sharded) await sub.sSubscribe(channel, listener);
  else await sub.subscribe(channel, listener);
  const ports = [...cluster.masters, ...cluster.replicas].map((n) => n.port);
  const kind = sharded ? 'publishshard' : 'publish';
  const before = await busCounters(ports, kind);
  const latencies: number[] = [];
  for (let i = 0; i < MESSAGES; i++) {
    const received = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`message ${i} not received within 2 s`)), 2_000);
      got = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    const t0 = performance.now();
    await pub.sendCommand([sharded ? 'SPUBLISH' : 'PUBLISH', channel, `waiter:${i} ${i} 0`]);
    await received;
    latencies.push(performance.now() - t0);
  }
  const after = await busCounters(ports, kind);
  await Promise.all([pub.quit(), sub.quit()]);
  const d = dist(latencies);
  console.log(`\n${sharded ? 'SPUBLISH (subscriber on the owner)' : 'PUBLISH (subscriber on another master)'}, ${MESSAGES} messages:`);
  console.log(`  publish -> receipt: p50 ${d.p50!.toFixed(3)} ms, p99 ${d.p99!.toFixed(3)} ms`);
  console.log('  | node | role | bus messages sent / message | received / message |');
  console.log('  | --- | --- | --- | --- |');
  ports.forEach((port, i) => {
    const role = i < 3 ? (port === owner ? 'master (publisher)' : port === (sharded ? owner : other) ? 'master (subscriber)' : 'master') : `replica of ${i - 3 === cluster.masters.findIndex((m) => m.port === owner) ? 'the publisher' : 'another master'}`;
    const per = (x: number) => (x / MESSAGES).toFixed(2);
    console.log(`  | ${port} | ${role} | ${per(after[i]!.sent - before[i]!.sent)} | ${per(after[i]!.received - before[i]!.received)} |`);
  });
}

const cluster = await startRedisCluster({ replicas: true });
try {
  await cluster.waitStable();
  console.log(`${serverVersion().label}, 3 masters + 3 replicas`);
  await run(cluster, false);
  if (hasShardedPubSub()) await run(cluster, true);
} finally {
  await cluster.stop();
}
