/**
 * The two quorum locks the `quorum` scenario compares, each over the same N masters (one client
 * per master, each through that master's relay): fairlock's `FairLocks.quorum` (the chain of
 * DESIGN §8) and node-redlock's quorum mode (`new Redlock([c0, c1, c2])`), both on ioredis 5.
 */
import { FairLocks } from '../../../src/index.js';
import { CLIENT_FAMILIES } from './clients.js';
import { redlockOver } from './redlock.js';
import type { Held, LockClient } from './types.js';

/** A lock over several masters: `create` gets one URL per master, master 0 first. */
export interface QuorumAdapter {
  id: string;
  label: string;
  client: string;
  wakeup: string;
  /** Calls `onQueued` once queued (fairlock: on the first master it queues on). */
  reportsQueued: boolean;
  create(urls: readonly string[], prefix: string): Promise<LockClient>;
}

const ioredis5 = CLIENT_FAMILIES.find((f) => f.slug === 'ioredis5')!;

/** fairlock's quorum with its defaults (lease 5 s, heartbeat 1 s, commandTimeoutMs 1 s). */
export const fairlockQuorum: QuorumAdapter = {
  id: 'fairlock quorum',
  label: 'FairLocks.quorum(clients), defaults (lease 5 s, heartbeat 1 s)',
  client: 'ioredis 5',
  wakeup: 'the chain: FIFO queue on each master in index order, direct hand-off + PUBLISH',
  reportsQueued: true,
  async create(urls, prefix): Promise<LockClient> {
    const clients = await Promise.all(urls.map((u) => ioredis5.connect(u)));
    const q = FairLocks.quorum(clients.map((c) => c.raw as never), { prefix });
    let closed = false;
    const closeAll = async (bound: number) => {
      if (closed) return;
      closed = true;
      await Promise.race([q.close().catch(() => undefined), new Promise((r) => setTimeout(r, bound).unref())]);
    };
    return {
      async acquire(name, hooks): Promise<Held> {
        const lease = await q.lock(name).acquire({ timeoutMs: 600_000, ...(hooks?.onQueued ? { onQueued: hooks.onQueued } : {}) });
        return { release: () => lease.release(), token: lease.token };
      },
      ping: async () => void (await clients[0]!.ping()),
      async close() {
        await closeAll(6_000);
        await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
      },
      async destroy() {
        await closeAll(3_000);
        await Promise.all(clients.map((c) => c.disconnect().catch(() => undefined)));
      },
    };
  },
};

/** node-redlock 5 (beta) in its quorum mode over the N masters: default settings (retryCount 10, retryDelay 200 ms, retryJitter 100 ms), re-tried until acquired. */
export const redlockQuorum: QuorumAdapter = {
  id: 'redlock (quorum)',
  label: 'redlock 5.0.0-beta.2, new Redlock([c0, ..., cN-1]), default retry settings (10 x 200 ms +- 100 ms), re-tried until acquired, 5 s duration',
  client: 'ioredis 5',
  wakeup: 'retry every 200 ms +- 100 ms jitter',
  reportsQueued: false,
  create: (urls, prefix) => redlockOver(urls, prefix),
};

export const QUORUM_ADAPTERS: readonly QuorumAdapter[] = [fairlockQuorum, redlockQuorum];
