/**
 * The per-file setup most tests share: one real Redis, one connected client, and the child
 * processes the file forks. Hooks are registered on ava's `test`; `after.always` resumes paused
 * children, kills them by PID, quits the client and stops the server.
 */
import test from 'ava';
import type { RedisClient } from '../../src/scripts.js';
import { stopAll, type Child } from './children.js';
import { connect, startRedis, type RedisServer, type StartOptions } from './redis.js';

export interface Fixture {
  server: RedisServer;
  client: RedisClient;
  children: Child[];
}

export function useRedis(options: StartOptions & { owned?: boolean } = {}): Fixture {
  const fx = { children: [] as Child[] } as unknown as Fixture;
  test.before(async () => {
    fx.server = await startRedis(options);
    fx.client = await connect(fx.server.url);
  });
  test.after.always(async () => {
    for (const c of fx.children) c.signal('SIGCONT');
    await stopAll(fx.children);
    await fx.client?.quit().catch(() => undefined);
    await fx.server?.stop();
  });
  return fx;
}
