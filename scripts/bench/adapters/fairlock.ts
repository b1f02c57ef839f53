import { createClient } from 'redis';
import { FairLocks } from '../../../src/index.js';
import type { Adapter, LockClient } from './types.js';

/** fairlock with its defaults: FIFO queue in Lua, one PUBLISH wakes the next holder. */
export const fairlock: Adapter = {
  id: 'fairlock',
  label: 'fairlock (defaults: lease 5 s, heartbeat 1 s)',
  client: 'node-redis 4',
  wakeup: 'direct hand-off + PUBLISH to the next waiter',
  async create(url, prefix): Promise<LockClient> {
    const client = createClient({ url, socket: { reconnectStrategy: false } });
    client.on('error', () => undefined);
    await client.connect();
    const locks = new FairLocks(client as never, { prefix });
    let closed = false;
    return {
      async acquire(name, hooks) {
        const onQueued = hooks?.onQueued;
        const lease = await locks.lock(name).acquire(onQueued ? { timeoutMs: 600_000, onQueued } : { timeoutMs: 600_000 });
        return { release: () => lease.release(), token: lease.token };
      },
      ping: async () => void (await client.ping()),
      async close() {
        if (closed) return;
        closed = true;
        await locks.close().catch(() => undefined);
        await client.quit().catch(() => undefined);
      },
      async destroy() {
        if (closed) return;
        closed = true;
        // close() cancels every wait with one script each; bounded so a dead server cannot hang us.
        await Promise.race([locks.close().catch(() => undefined), new Promise((r) => setTimeout(r, 3_000))]);
        await client.disconnect().catch(() => undefined);
      },
    };
  },
};
