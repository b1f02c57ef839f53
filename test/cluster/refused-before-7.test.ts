/**
 * On a Redis Cluster before 7.0 (no sharded pub/sub, so no wake-up could reach a waiter) acquire() is
 * refused at once with UNSUPPORTED_SERVER naming the version and nothing queued, while tryAcquire(),
 * which never waits, works. Needs a 6.2 cluster (PATH, FAIRLOCK_REDIS_6_2 or ../shared/servers);
 * skipped, with the reason, without one.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { FairLockError } from '../../src/index.js';
import { newLocks, scopeOf } from '../helpers/cleanup.js';
import { clusterUrl, connectCluster } from '../helpers/clients.js';
import { startRedisCluster } from '../helpers/cluster.js';
import { within } from '../helpers/bounded.js';
import { newPrefix } from '../helpers/redis.js';
import { serverVersion } from '../helpers/server-version.js';

/** A folder holding Redis 6.2's redis-server, or undefined. */
function redis62(): string | undefined {
  const onPath = serverVersion();
  if (onPath.name === 'Redis' && onPath.major === 6 && onPath.minor === 2) return ''; // already first on PATH
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const dir = process.env.FAIRLOCK_REDIS_6_2 ?? resolve(repo, '../shared/servers/redis-6.2.16');
  return existsSync(resolve(dir, 'redis-server')) ? dir : undefined;
}

const dir = redis62();
// This file's process only (ava runs each file in its own): the helpers start `redis-server` from PATH.
if (dir) process.env.PATH = `${dir}:${process.env.PATH}`;
const run = dir === undefined ? test.skip : test.serial;
const skipped = dir === undefined ? ' [skipped: no Redis 6.2 build: set FAIRLOCK_REDIS_6_2 to a folder holding its redis-server]' : '';

for (const family of ['redis4', 'ioredis5'] as const) {
  run(`${family} on a Redis 6.2 cluster: acquire() is refused at once with UNSUPPORTED_SERVER naming 6.2, nothing queued; tryAcquire() works${skipped}`, async (t) => {
    t.timeout(60_000);
    const cluster = await startRedisCluster();
    scopeOf(t).add(() => cluster.stop());
    t.regex(serverVersion().label, /^Redis 6\.2\./, 'the cluster runs 6.2');
    const client = await connectCluster(clusterUrl(cluster.startupNodes), family);
    scopeOf(t).add(() => client.close());
    const locks = newLocks(t, client.client, { prefix: newPrefix() });

    const held = await locks.lock('job').tryAcquire();
    t.truthy(held, 'tryAcquire() never waits, so it works');
    // Without the refusal this acquire waits for a wake-up that never comes (the holder stays).
    const err = await within(
      locks.lock('job').acquire({ timeoutMs: 30_000 }).then(
        () => undefined,
        (e: unknown) => e,
      ),
      5_000,
      'acquire() on a 6.2 cluster',
    );
    t.true(err instanceof FairLockError, String(err));
    t.is((err as FairLockError).code, 'UNSUPPORTED_SERVER');
    t.regex((err as Error).message, /Redis 6\.2\.\d+/, 'the message names the version');
    t.regex((err as Error).message, /SPUBLISH/);
    const info = await locks.inspect('job');
    t.deepEqual(info.queue, [], 'nothing was queued');
    t.is(info.holder?.id, held!.id);
    await held!.release();
  });
}
