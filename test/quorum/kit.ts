/**
 * Shared pieces of the quorum tests (not a test file): a waiter that resolves once queued, and a
 * critical-section runner that counts overlaps and writes to a fenced store with the token.
 */
import type { ExecutionContext } from 'ava';
import type { Lease, QuorumLocks } from '../../src/index.js';
import { fencedWrite } from '../helpers/fenced.js';
import { whenQueued } from '../helpers/queued.js';
import type { RedisClient } from '../helpers/redis-client.js';

export type QuorumLease = Lease & { masters: number[] };

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts an acquire and resolves once it queued (or was granted), with the promise of its lease. */
export async function queue(q: QuorumLocks, name: string, timeoutMs = 20_000): Promise<{ lease: Promise<Lease> }> {
  const w = whenQueued();
  const lease = q.lock(name).acquire({ onQueued: w.onQueued, timeoutMs });
  lease.catch(() => undefined); // the test awaits it later; a rejection meanwhile is not unhandled
  await Promise.race([w.queued, lease]);
  return { lease };
}

/** A critical section: count who is inside, write to the fenced store with the token, release. */
export function sectionRunner(store: RedisClient, key: string) {
  let inside = 0;
  let overlaps = 0;
  const run = async (lease: Lease, label: string) => {
    inside++;
    if (inside > 1) overlaps++;
    const accepted = await fencedWrite(store, key, lease.token, label);
    await sleep(20);
    inside--;
    const lost = lease.signal.aborted;
    await lease.release();
    return { accepted, lost };
  };
  return { run, overlaps: () => overlaps };
}

/**
 * Runs `body`; if it fails, logs every event of `quorums` first, stamped on this process's clock (who
 * queued where, which master went down, who was granted), so a CI failure can be read without a rerun.
 */
export function traceOnFailure(t: ExecutionContext, quorums: QuorumLocks[], body: () => Promise<void>): Promise<void> {
  const start = performance.now();
  const lines: string[] = [];
  const events = ['queued', 'granted', 'released', 'lost', 'timeout', 'aborted', 'redisError', 'masterDown', 'masterUp'] as const;
  quorums.forEach((q, k) => {
    for (const e of events) {
      q.on(e, (...args: unknown[]) => {
        const what = args.map((a) => (a instanceof Error ? `${a.name}: ${a.message}` : JSON.stringify(a, (key, v: unknown) => (v instanceof Error ? v.message : key === 'signal' ? undefined : v)))).join(' ');
        if (lines.length < 500) lines.push(`${(performance.now() - start).toFixed(0).padStart(6)} ms q${k} ${e} ${what}`.slice(0, 400));
      });
    }
  });
  return body().catch((err: unknown) => {
    t.log(`quorum events:\n${lines.join('\n')}`);
    throw err;
  });
}
