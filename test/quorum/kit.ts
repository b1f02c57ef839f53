/**
 * Shared pieces of the quorum tests (not a test file): a waiter that resolves once queued, and a
 * critical-section runner that counts overlaps and writes to a fenced store with the token.
 */
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
