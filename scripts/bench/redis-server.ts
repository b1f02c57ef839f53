/** The Redis the bench measures: REDIS_URL (loopback only), or a redis-server of its own, stopped by PID. */
import { createClient } from 'redis';
import { startLocalRedis } from '../../src/cli/redis-server.js';
import { sleep } from './clock.js';

export interface BenchRedis {
  url: string;
  /** True when we started it: only then may the bench FLUSHALL between libraries. */
  owned: boolean;
  pid: number | undefined;
  version: string;
  stop(): Promise<void>;
}

async function info(url: string, deadlineMs: number): Promise<string> {
  const until = Date.now() + deadlineMs;
  for (let i = 0; Date.now() < until && i < 1_000; i++) {
    const c = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 500 } });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const s = await c.info('server');
      await c.quit();
      return /redis_version:(\S+)/.exec(s)?.[1] ?? '?';
    } catch {
      await c.disconnect().catch(() => undefined);
      await sleep(50);
    }
  }
  throw new Error(`no Redis answered at ${url} within ${deadlineMs} ms`);
}

export async function startBenchRedis(): Promise<BenchRedis> {
  const env = process.env.REDIS_URL;
  if (env) {
    const host = new URL(env).hostname;
    if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(host)) throw new Error(`REDIS_URL must be a loopback address, got ${host}`);
    return { url: env, owned: false, pid: undefined, version: await info(env, 5_000), stop: async () => undefined };
  }
  // The 10,000-waiter run opens many connections.
  let redis;
  try {
    redis = await startLocalRedis({ args: ['--maxclients', '20000'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(e.code === 'ENOENT' ? 'cannot start redis-server (is it installed?)' : e.message);
  }
  try {
    return { url: redis.url, owned: true, pid: redis.pid, version: await info(redis.url, 10_000), stop: redis.stop };
  } catch (err) {
    await redis.stop();
    throw err;
  }
}
