import { createClient } from 'redis-v5';
import { lock } from 'simple-redis-mutex';
import type { Adapter, LockClient } from './types.js';

// The library logs its subscriber's errors itself; a client the bench destroys on purpose is not news.
const consoleError = console.error.bind(console);
console.error = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].startsWith('simple-redis-mutex subscriber error')) return;
  consoleError(...args);
};

/** simple-redis-mutex 3 on node-redis 5: SET NX, every release PUBLISHes and wakes every waiter. */
export const simpleRedisMutex: Adapter = {
  id: 'simple-redis-mutex',
  label: 'simple-redis-mutex 3, defaults (timeout 30 s, poll 10 s), pub/sub wake-up of all waiters',
  client: 'node-redis 5',
  wakeup: 'PUBLISH on release wakes every waiter, which retry SET NX',
  async create(url, prefix): Promise<LockClient> {
    const client = createClient({ url, socket: { reconnectStrategy: false } });
    client.on('error', () => undefined);
    await client.connect();
    return {
      async acquire(name) {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        const release = await lock(client as any, `${prefix}:${name}`);
        return { release: () => release() };
      },
      ping: async () => void (await client.ping()),
      async close() {
        await client.close().catch(() => undefined);
      },
      async destroy() {
        client.destroy();
      },
    };
  },
};
