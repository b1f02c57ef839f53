/**
 * The per-file setup most tests share: one real Redis, one connected client, and the child
 * processes the file forks. Hooks are registered on ava's `test`; `after.always` resumes paused
 * children and kills them by PID (every child this process forked, not only those in `children`),
 * disconnects the client and its duplicates (the subscribers of FairLocks made on it) and stops
 * the server. Each test closes what it made itself through test/helpers/cleanup.ts.
 */
import test from 'ava';
import type { RedisClient } from './redis-client.js';
import { disposeAll, type Child } from './children.js';
import { closeClient, settleWithin, trackDuplicates, CLOSE_LIMIT_MS } from './cleanup.js';
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
    fx.client = trackDuplicates(await connect(fx.server.url));
  });
  test.after.always(async () => {
    await disposeAll(fx.children);
    if (fx.client) await closeClient(fx.client);
    if (fx.server) await settleWithin(fx.server.stop(), CLOSE_LIMIT_MS);
  });
  return fx;
}
