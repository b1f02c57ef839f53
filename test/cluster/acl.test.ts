/**
 * README's ACL rule plus its cluster line, set on every node, is enough on a cluster for node-redis 4 and
 * ioredis 5 cluster clients: a hand-off goes through and its wake-up is sent with SPUBLISH (none
 * rejected) to the waiter's subscribed shard channel.
 */
import { readFileSync } from 'node:fs';
import { clusterTest as test } from './target.js';
import { Cluster } from 'ioredis';
import { createCluster } from 'redis';
import { shardWakeChannel } from '../../src/protocol/keys.js';
import { escapeName } from '../../src/protocol/keys.js';
import type { RedisClientLike } from '../../src/redis/seam.js';
import { newLocks, scopeOf, settleWithin, CLOSE_LIMIT_MS } from '../helpers/cleanup.js';
import { adminCommand, startRedisCluster, type RedisClusterHandle } from '../helpers/cluster.js';
import { whenQueued } from '../helpers/queued.js';
import { newPrefix } from '../helpers/redis.js';
import { within } from '../helpers/bounded.js';

let cluster: RedisClusterHandle | undefined;
test.before(async () => {
  cluster = await startRedisCluster();
});
test.after.always(async () => {
  if (cluster) await settleWithin(cluster.stop(), CLOSE_LIMIT_MS);
});

/** README's ACL line and its cluster line, for `user` (password "pw") and `prefix`. */
function readmeRule(prefix: string, user: string): string[] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const base = /<!-- acl:[^>]*-->\s*```\s*\n(ACL SETUSER [^\n]+)\n```/.exec(readme)?.[1];
  const extra = /<!-- acl-cluster:[^>]*-->\s*```\s*\n([^\n]+)\n```/.exec(readme)?.[1];
  if (!base || !extra) throw new Error('README lacks the ACL rule or its cluster line');
  return `${base} ${extra}`
    .replace(/fairlock:\*/g, `${prefix}:*`)
    .split(/\s+/)
    .map((w, i) => (i === 2 ? user : w === '>secret' ? '>pw' : w));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/* eslint-disable @typescript-eslint/no-explicit-any -- two client types, one shape used */
for (const family of ['redis4', 'ioredis5'] as const) {
  test.serial(`${family} cluster client under README's ACL rule: hand-off, SPUBLISH wake-up, shard subscription`, async (t) => {
    const prefix = newPrefix();
    const user = `locker${family}`;
    const rule = readmeRule(prefix, user);
    for (const node of [...cluster!.masters, ...cluster!.replicas]) await adminCommand(node.port, rule);
    const connect = async (): Promise<RedisClientLike> => {
      if (family === 'ioredis5') {
        const c: any = new Cluster(cluster!.startupNodes, { redisOptions: { username: user, password: 'pw' } });
        c.on('error', () => undefined);
        scopeOf(t).add(() => c.disconnect());
        await within(new Promise((resolve, reject) => (c.once('ready', resolve), c.once('end', () => reject(new Error('ended'))))), 15_000, 'ioredis ready');
        return c;
      }
      const c: any = createCluster({ rootNodes: cluster!.rootNodes, defaults: { username: user, password: 'pw' } });
      c.on('error', () => undefined);
      scopeOf(t).add(() => c.disconnect().catch(() => undefined));
      await within(c.connect(), 15_000, 'node-redis connect');
      return c;
    };
    const opts = { prefix, heartbeatMs: 200, livenessMs: 1_000 };
    const a = newLocks(t, await connect(), opts);
    const b = newLocks(t, await connect(), opts);
    const name = `acl-${family}`;
    const owner = await cluster!.ownerOf(`{${escapeName(name)}}`);
    const spublish = async () => {
      const info = String(await adminCommand(owner, ['INFO', 'commandstats']));
      const m = /^cmdstat_spublish:calls=(\d+).*rejected_calls=(\d+)/m.exec(info);
      return { calls: Number(m?.[1] ?? 0), rejected: Number(m?.[2] ?? 0) };
    };
    const held = await within(a.lock(name).acquire(), 15_000, 'the first grant');
    const q = whenQueued();
    const next = b.lock(name).acquire({ timeoutMs: 15_000, onQueued: q.onQueued });
    next.catch(() => undefined);
    await within(q.queued, 15_000, 'queued');
    const channel = shardWakeChannel(prefix, name, b.sessionId);
    let subscribers = 0;
    for (let i = 0; i < 50 && subscribers === 0; i++) {
      subscribers = Number(((await adminCommand(owner, ['PUBSUB', 'SHARDNUMSUB', channel])) as unknown[])[1]);
      if (subscribers === 0) await sleep(50);
    }
    t.is(subscribers, 1, 'the waiter SSUBSCRIBEd its shard channel on the owner');
    const before = await spublish();
    await held.release();
    const lease = await within(next, 15_000, 'the hand-off');
    t.true(lease.token > held.token);
    const after = await spublish();
    t.true(after.calls > before.calls, 'the release sent the wake-up with SPUBLISH');
    t.is(after.rejected, 0, 'no SPUBLISH was refused');
    await lease.release();
  });
}
