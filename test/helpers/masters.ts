/**
 * N independent redis-server processes for the quorum tests, each with a client of its own,
 * and a quorum over them: all registered with the test, stopped by PID when it ends (a SIGSTOPped
 * master is resumed first so that nothing waits on it).
 *
 * The masters start as masters that have served quorums for a while: each has its born key (DESIGN
 * §8 rule 9, the restart guard) set long ago, so the first acquire is not held back one guard, as
 * the first use of a fresh server is (`fresh: true` leaves them fresh). A master restarted with
 * `restartEmpty` has no born key: its restart guard holds the quorum's names for one lease.
 */
import type { ExecutionContext } from 'ava';
import { DEFAULTS, FairLocks, type QuorumLocks, type QuorumOptions } from '../../src/index.js';
import { bornKey } from '../../src/protocol/keys.js';
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
  /** SIGKILL master i and start it again on the same port with no data (no persistence): it has lost its queues, tokens and born key. */
  restartEmpty(i: number): Promise<void>;
}

/** Short timings so that a dead master is found in a fraction of a second. */
export const FAST: QuorumOptions = { leaseMs: 3_000, heartbeatMs: 150, livenessMs: 1_000, commandTimeoutMs: 1_000 };

export async function startMasters(t: ExecutionContext, n: number, options: { fresh?: boolean } = {}): Promise<Masters> {
  const servers = await Promise.all(Array.from({ length: n }, () => ownRedis(t, { owned: true })));
  if (!options.fresh) {
    for (const s of servers) {
      const c = await openClient(t, s.url);
      await c.hSet(bornKey(DEFAULTS.prefix), 'b', '0'); // born long ago: no guard left to wait out
    }
  }
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
    async restartEmpty(i) {
      await servers[i]!.kill();
      await servers[i]!.restart();
    },
    pause(i) {
      paused.add(i);
      process.kill(servers[i]!.pid!, 'SIGSTOP');
    },
  };
}
