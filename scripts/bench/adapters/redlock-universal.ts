import { createClient } from 'redis';
import { createLock, LockAcquisitionError, NodeRedisAdapter, type Lock } from 'redlock-universal';
import { Destroyed, type Adapter, type LockClient } from './types.js';

/** redlock-universal's single-instance lock on node-redis 4, defaults (3 retries x 100 ms), re-tried until acquired. */
export const redlockUniversal: Adapter = {
  id: 'redlock-universal',
  label: 'redlock-universal 0.8 createLock, defaults (3 retries x 100 ms, ttl 30 s), re-tried until acquired',
  client: 'node-redis 4',
  wakeup: 'retry every 100 ms',
  async create(url, prefix): Promise<LockClient> {
    const client = createClient({ url, socket: { reconnectStrategy: false } });
    client.on('error', () => undefined);
    await client.connect();
    const adapter = new NodeRedisAdapter(client);
    let destroyed = false;
    const locks = new Map<string, Lock[]>(); // a lock object per concurrent caller, reused
    return {
      async acquire(name) {
        const free = locks.get(name) ?? [];
        locks.set(name, free);
        const lock = free.pop() ?? createLock({ adapter, key: `${prefix}:${name}` });
        for (;;) {
          if (destroyed) throw new Destroyed();
          try {
            const handle = await lock.acquire();
            return {
              release: async () => {
                await lock.release(handle);
                free.push(lock);
              },
            };
          } catch (err) {
            if (!(err instanceof LockAcquisitionError)) throw err;
          }
        }
      },
      ping: async () => void (await client.ping()),
      async close() {
        destroyed = true;
        await client.quit().catch(() => undefined);
      },
      async destroy() {
        destroyed = true;
        await client.disconnect().catch(() => undefined);
      },
    };
  },
};
