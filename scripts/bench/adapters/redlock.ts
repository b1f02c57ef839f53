import { Redis } from 'ioredis';
// @ts-expect-error -- redlock 5 beta's package.json "exports" has no "types" condition
import * as redlockModule from 'redlock';
import { Destroyed, type Adapter, type LockClient } from './types.js';

interface RedlockLike {
  acquire(resources: string[], duration: number): Promise<{ release(): Promise<unknown> }>;
  on(event: 'error', listener: (err: Error) => void): void;
}
const { default: Redlock, ExecutionError } = redlockModule as {
  default: new (clients: Redis[]) => RedlockLike;
  ExecutionError: new (...args: never[]) => Error;
};

/** redlock 5 (beta) on one ioredis client, default retries (10 x 200 ms + jitter), retried until acquired. */
export const redlock: Adapter = {
  id: 'redlock',
  label: 'redlock 5.0.0-beta.2, default retry settings, re-tried until acquired, 5 s duration',
  client: 'ioredis 5',
  wakeup: 'retry every 200 ms + up to 200 ms jitter',
  create: (url, prefix) => redlockOver([url], prefix),
};

/**
 * A LockClient of node-redlock over the masters at `urls` (one: the single-server adapter above; N:
 * its quorum mode, scripts/bench/adapters/quorum.ts), each on an ioredis client of its own. An
 * acquire is retried until it succeeds: redlock gives up after its own retries (ExecutionError).
 */
export async function redlockOver(urls: readonly string[], prefix: string): Promise<LockClient> {
  const clients = urls.map((u) => new Redis(u, { lazyConnect: true, maxRetriesPerRequest: 0 }));
  for (const c of clients) c.on('error', () => undefined);
  await Promise.all(clients.map((c) => c.connect()));
  const rl = new Redlock(clients);
  rl.on('error', () => undefined);
  let destroyed = false;
  return {
    async acquire(name) {
      for (;;) {
        if (destroyed) throw new Destroyed();
        try {
          const lock = await rl.acquire([`${prefix}:${name}`], 5_000);
          return { release: async () => void (await lock.release()) };
        } catch (err) {
          if (!(err instanceof ExecutionError)) throw err;
        }
      }
    },
    ping: async () => void (await clients[0]!.ping()),
    async close() {
      destroyed = true;
      await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
    },
    async destroy() {
      destroyed = true;
      for (const c of clients) c.disconnect();
    },
  };
}
