import { Redis } from 'ioredis';
import { Mutex, Semaphore } from 'redis-semaphore';
import type { Adapter, LockClient } from './types.js';

/** redis-semaphore's Mutex with its defaults (retry every 10 ms, 10 s lock timeout), a long acquire timeout. */
export const redisSemaphore: Adapter = {
  id: 'redis-semaphore',
  label: 'redis-semaphore 5 Mutex, defaults, acquireTimeout 10 min',
  client: 'ioredis 5',
  wakeup: 'retry every 10 ms',
  kinds: { semaphore: 'Semaphore(client, key, permits), defaults (retry every 10 ms)' },
  async create(url, prefix): Promise<LockClient> {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    await client.connect();
    return {
      async acquire(name) {
        const mutex = new Mutex(client, `${prefix}:${name}`, { acquireTimeout: 600_000 });
        await mutex.acquire();
        return { release: () => mutex.release() };
      },
      async semaphore(name, permits) {
        const semaphore = new Semaphore(client, `${prefix}:${name}`, permits, { acquireTimeout: 600_000 });
        await semaphore.acquire();
        return { release: () => semaphore.release() };
      },
      ping: async () => void (await client.ping()),
      async close() {
        await client.quit().catch(() => undefined);
      },
      async destroy() {
        client.disconnect();
      },
    };
  },
};
