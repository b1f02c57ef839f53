/**
 * The majority arithmetic on five real independent redis-server processes (M = 3): a holder that
 * loses two of its masters climbs upward to count three again, waiters skip the dead ones, and a
 * third loss leaves no majority: the holder is told, and acquires reject with QUORUM_LOST.
 */
import test from 'ava';
import type { Lease } from '../../src/index.js';
import { startMasters, FAST } from '../helpers/masters.js';
import { whenAborted, whenQueued } from '../helpers/queued.js';

type QuorumLease = Lease & { masters: number[] };

test('five masters: two lost (a minority) keep the lease by climbing upward; a third leaves no majority', async (t) => {
  const m = await startMasters(t, 5);
  const [a, b] = await Promise.all([m.quorum(), m.quorum()]);
  t.is(a!.majority, 3);
  const holder = (await a!.lock('five').acquire()) as QuorumLease;
  t.deepEqual(holder.masters, [0, 1, 2], 'an uncontended acquire takes the first three');
  const w = whenQueued();
  const waiting = b!.lock('five').acquire({ onQueued: w.onQueued, timeoutMs: 20_000 });
  await w.queued;
  await Promise.all([m.kill(0), m.kill(1)]);
  await new Promise((r) => setTimeout(r, FAST.leaseMs! + 300));
  t.true(holder.held, 'the holder keeps its lease');
  t.deepEqual(holder.masters, [2, 3, 4], 'it climbed to masters 3 and 4');
  const holderToken = holder.token;
  await holder.release();
  const next = (await waiting) as QuorumLease;
  t.deepEqual(next.masters, [2, 3, 4], 'the waiter skipped the dead masters');
  t.true(next.token > holderToken, 'tokens rise');
  const lost = whenAborted(next.signal);
  await m.kill(3);
  const reason = await Promise.race([lost, new Promise((r) => setTimeout(() => r('not told'), FAST.leaseMs! * 3))]);
  t.is((reason as { code?: string }).code, 'LOCK_LOST', 'two of five left: the holder is told');
  await t.throwsAsync(b!.lock('five').acquire({ timeoutMs: 20_000 }), { code: 'QUORUM_LOST' });
});
