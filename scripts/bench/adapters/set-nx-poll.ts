import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { Destroyed, sleep, type Adapter, type LockClient } from './types.js';

/** The release: compare-and-delete (also what scripts/bench/cost.ts measures as the baseline). */
export const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/** The classic seed pattern: SET key token NX PX, polled with a sleep; compare-and-delete to release. */
export function setNxPoll(pollMs: number): Adapter {
  return {
    id: `set-nx-poll-${pollMs}ms`,
    label: `SET NX PX 5000 polled every ${pollMs} ms, Lua compare-and-delete`,
    client: 'node-redis 4',
    wakeup: `polling every ${pollMs} ms`,
    async create(url, prefix): Promise<LockClient> {
      const client = createClient({ url, socket: { reconnectStrategy: false } });
      client.on('error', () => undefined);
      await client.connect();
      let destroyed = false;
      return {
        async acquire(name) {
          const key = `${prefix}:${name}`;
          const token = randomBytes(8).toString('hex');
          for (;;) {
            if (destroyed) throw new Destroyed();
            if ((await client.set(key, token, { NX: true, PX: 5_000 })) === 'OK') break;
            await sleep(pollMs);
          }
          return { release: async () => void (await client.eval(UNLOCK, { keys: [key], arguments: [token] })) };
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
}
