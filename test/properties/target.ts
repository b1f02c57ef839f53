/**
 * Where a property suite runs: one Redis (the fixture of test/helpers/fixture.ts) or a Redis Cluster
 * (test/cluster/target.ts). The suite asks the target for its clients, the URL its child processes
 * connect to, the Redis names of its locks, and the few server-side acts it needs.
 */
import type { ExecutionContext, TestFn } from 'ava';
import type { RedisClientLike } from '../../src/redis/seam.js';
import { openClient, ownRedis } from '../helpers/cleanup.js';
import { useRedis } from '../helpers/fixture.js';
import type { RedisClient } from '../helpers/redis-client.js';

export interface Target {
  /** The ava `test` the suite registers with: a cluster target's skips every test on a server that cannot run them. */
  readonly test?: TestFn;
  /** Added to every test title: '' on one Redis. */
  readonly label: string;
  /** The client the file's FairLocks share (set once the file's `before` hook ran). */
  readonly client: RedisClientLike;
  /** What a child process connects to: a redis:// URL, or a cluster:// one (test/helpers/clients.ts). */
  readonly url: string;
  /** Another client on the same Redis, closed when the test ends. */
  open(t: ExecutionContext): Promise<RedisClientLike>;
  /** The lock name a test uses for `base` (on a cluster: one that lands on a chosen master). */
  name(base: string): string;
  /** Kills every subscriber connection (what a network fault does to the wake-ups). */
  killSubscribers(t: ExecutionContext): Promise<void>;
  /** A Redis of the test's own (no other test's calls), a client on it, and its count of script calls so far. */
  own(t: ExecutionContext): Promise<{ client: RedisClientLike; evalCalls(): Promise<number> }>;
}

/** One Redis: the file's fixture. */
export function standaloneTarget(): Target {
  const fx = useRedis();
  return {
    label: '',
    get client() {
      return fx.client;
    },
    get url() {
      return fx.server.url;
    },
    open: (t) => openClient(t, fx.server.url),
    name: (base) => base,
    async killSubscribers(t) {
      const admin = await openClient(t, fx.server.url);
      await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    },
    async own(t) {
      const server = await ownRedis(t, { owned: true });
      const client = await openClient(t, server.url);
      return { client, evalCalls: () => evalCalls(client) };
    },
  };
}

/** Script calls a server ran so far (EVALSHA and EVAL), from INFO commandstats. */
export function evalCallsIn(info: string): number {
  let n = 0;
  for (const m of info.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+)/gm)) n += Number(m[2]);
  return n;
}

async function evalCalls(client: RedisClient): Promise<number> {
  return evalCallsIn(await client.info('commandstats'));
}
