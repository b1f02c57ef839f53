import { FairLocks, type Lease } from '../../../src/index.js';
import type { ClientFamily } from './clients.js';
import type { AcquireHooks, Adapter, Held, LockClient, SemaphoreRequest } from './types.js';

/**
 * fairlock with its defaults (FIFO queue in Lua, one PUBLISH wakes the next holder) on one client
 * family: the row `fairlock (<family>)`. Its PING, the floor of its latency ratios, is on that client.
 */
export function fairlockOn(family: ClientFamily): Adapter {
  return {
    id: `fairlock (${family.name})`,
    label: 'fairlock (defaults: lease 5 s, heartbeat 1 s)',
    client: family.name,
    wakeup: 'direct hand-off + PUBLISH to the next waiter',
    reportsQueued: true,
    kinds: { semaphore: 'locks.semaphore(name, { permits })', rw: 'locks.readWrite(name)' },
    warm: async () => void (await family.load()),
    async create(url, prefix): Promise<LockClient> {
      const client = await family.connect(url);
      const locks = new FairLocks(client.raw as never, { prefix });
      let closed = false;
      const options = (hooks?: AcquireHooks) => (hooks?.onQueued ? { timeoutMs: 600_000, onQueued: hooks.onQueued } : { timeoutMs: 600_000 });
      const held = (lease: Lease): Held => ({ release: () => lease.release(), token: lease.token });
      return {
        acquire: async (name, hooks) => held(await locks.lock(name).acquire(options(hooks))),
        semaphore: async (name, permits, request?: SemaphoreRequest) =>
          held(await locks.semaphore(name, { permits }).acquire({ ...options(request), ...(request?.group === undefined ? {} : { group: request.group }) })),
        readWrite: async (name, mode, hooks) => held(await locks.readWrite(name)[mode]().acquire(options(hooks))),
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
}
