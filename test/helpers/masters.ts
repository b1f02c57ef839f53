/**
 * N independent redis-server processes for the quorum tests, each with a client of its own,
 * and a quorum over them: all registered with the test, stopped by PID when it ends (a SIGSTOPped
 * master is resumed first so that nothing waits on it).
 */
import type { ExecutionContext } from 'ava';
import { FairLocks, type QuorumLocks, type QuorumOptions } from '../../src/index.js';
import { openClient, ownRedis, scopeOf } from './cleanup.js';
import type { RedisClient } from './redis-client.js';
import type { RedisServer } from './redis.js';

export interface Masters {
  servers: RedisServer[];
  /** A quorum of its own over the masters: its own clients, closed with the test. */
  quorum(options?: QuorumOptions): Promise<QuorumLocks>;
  /** SIGKILL master i. */
  kill(i: number): Promise<void>;
  /** SIGSTOP master i (SIGCONT at the test's end). */
  pause(i: number): void;
}

/** Short timings so that a dead master is found in a fraction of a second. */
export const FAST: QuorumOptions = { leaseMs: 1_500, heartbeatMs: 100, livenessMs: 600, commandTimeoutMs: 300 };

export async function startMasters(t: ExecutionContext, n: number): Promise<Masters> {
  const servers = await Promise.all(Array.from({ length: n }, () => ownRedis(t, { owned: true })));
  const paused = new Set<number>();
  scopeOf(t).add(() => {
    for (const i of paused) if (servers[i]!.pid !== undefined) process.kill(servers[i]!.pid!, 'SIGCONT');
  });
  return {
    servers,
    async quorum(options = FAST) {
      const clients: RedisClient[] = [];
      for (const s of servers) clients.push(await openClient(t, s.url));
      const q = FairLocks.quorum(clients, options);
      scopeOf(t).add(() => q.close());
      return q;
    },
    kill: (i) => servers[i]!.kill(),
    pause(i) {
      paused.add(i);
      process.kill(servers[i]!.pid!, 'SIGSTOP');
    },
  };
}
