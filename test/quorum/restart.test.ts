/**
 * A master restarted EMPTY (SIGKILL, then started again on the same port with no data: no queues, no
 * tokens, no born key) on three real independent redis-server processes:
 *   - at the head, middle and tail of the chain while a holder holds and two wait: never two holders
 *     (a fenced store; no waiter granted while the holder still holds), tokens rise above every
 *     earlier one, every waiter is granted (a restarted master loses its queue order: the two may
 *     swap); the holder keeps its lease (its grant on the restarted master counts until its deadline,
 *     while it restores a majority upward);
 *   - the master-side restart rule (DESIGN §8 rule 9): a restarted master grants nothing for a lease,
 *     driven directly (the engine's acquire with guardMs) and through the quorum; a waiter queued
 *     behind the guard is granted as it ends (a beat at the reply's guardUntil), not at the next
 *     heartbeat; `restartGuard: false` (masters with AOF appendfsync always) is not held back.
 * Order comes from tokens and the fenced store, never from clocks.
 */
import test, { type ExecutionContext } from 'ava';
import type { Lease } from '../../src/index.js';
import { GUARD_ID } from '../../src/protocol/codes.js';
import { bornKey, lockKeys, waiterId } from '../../src/protocol/keys.js';
import { Scripts } from '../../src/protocol/scripts.js';
import { adaptClient } from '../../src/redis/adapt.js';
import { openClient, ownRedis } from '../helpers/cleanup.js';
import { fencedLog } from '../helpers/fenced.js';
import { startMasters, FAST } from '../helpers/masters.js';
import { queue, sectionRunner, sleep, type QuorumLease } from './kit.js';

async function restartWhileHeld(t: ExecutionContext, target: number): Promise<void> {
  const m = await startMasters(t, 3);
  const storeServer = await ownRedis(t, { owned: true });
  const store = await openClient(t, storeServer.url);
  const key = `fenced:restart:${target}`;
  const sections = sectionRunner(store, key);
  const [a, b, c] = await Promise.all([m.quorum(), m.quorum(), m.quorum()]);
  const holder = (await a!.lock('job').acquire()) as QuorumLease;
  t.deepEqual(holder.masters, [0, 1]);
  const first = holder.token;
  let holderIn = true;
  const grantedWhileHeld: string[] = [];
  const waiters = [await queue(b!, 'job'), await queue(c!, 'job')];
  const runs = waiters.map(async ({ lease }, k) => {
    const l = await lease;
    if (holderIn && holder.held) grantedWhileHeld.push(`w${k} (token ${l.token}) while the holder held`);
    return sections.run(l, `w${k}`);
  });
  await m.restartEmpty(target);
  await sleep(FAST.leaseMs! + 300);
  // Its grant on a restarted master still counts until its deadline (the guard grants nobody else
  // there meanwhile), and it climbs upward in that time: it keeps its lease wherever the restart was.
  t.true(holder.held, 'the holder kept its lease');
  t.true(holder.masters.length >= 2, `the holder kept a majority (${holder.masters.join(', ')})`);
  t.like(await sections.run(holder, 'holder'), { accepted: true }, 'the holder writes with its token');
  holderIn = false;
  const results = await Promise.all(runs);
  t.deepEqual(results.map((r) => r.accepted), [true, true], 'every waiter is granted and writes with a rising token');
  t.deepEqual(grantedWhileHeld, [], 'no waiter was granted while the holder still held');
  t.is(sections.overlaps(), 0, 'never two in the section');
  const log = await fencedLog(store, key);
  t.log(log.map((e) => e.value).join(' '));
  t.true(log.every((e, i) => i === 0 || e.token > log[i - 1]!.token), `tokens strictly rise: ${log.map((e) => `${e.value}:${e.token}`).join(' ')}`);
  t.true(log.every((e) => e.value === 'holder' || e.token > first), 'above the holder\'s token, across the restarted master');
}

for (const [target, where] of [[0, 'head'], [1, 'middle'], [2, 'tail']] as const) {
  test(`master ${target} (${where}) restarted empty while a holder holds and two wait: one holder at a time, tokens rise, all granted`, (t) => restartWhileHeld(t, target));
}

test('the restart rule: a restarted master grants nothing for a lease (directly and through the quorum); a waiter behind the guard is granted as it ends', async (t) => {
  // A long heartbeat period: a grant at the guard's end comes from the beat at guardUntil, not from a periodic one.
  const options = { leaseMs: 1_000, heartbeatMs: 5_000, livenessMs: 10_000, commandTimeoutMs: 300 };
  const m = await startMasters(t, 3);
  const q = await m.quorum(options);
  const before = await q.lock('r').using((l) => l.token);
  await m.restartEmpty(0);

  // Directly: the engine's acquire with a guard on the restarted master is refused (try: busy until the guard's end).
  const direct = await openClient(t, m.servers[0]!.url);
  const scripts = new Scripts(adaptClient(direct), 'fairlock');
  const busy = await scripts.acquire(lockKeys('fairlock', 'r'), waiterId('d1rect', 1, 1_000, true, 1, 'x'), 10_000, 'try', 'lock', 1, undefined, {}, { guardMs: options.leaseMs });
  t.is(busy.kind, 'busy', 'the restarted master grants nothing');
  const guardUntil = (busy as { guardUntil?: number }).guardUntil!;
  t.is(guardUntil - busy.now, options.leaseMs, 'for a full lease from its first quorum call');
  t.truthy(await direct.hGet(bornKey('fairlock'), 'b'), 'the born key is set again');

  // Through the quorum: a tryAcquire is refused, an acquire waits on master 0 behind the guard.
  t.is(await q.lock('r').tryAcquire(), null, 'tryAcquire is busy while the guard holds');
  const asked = q.lock('r').acquire({ timeoutMs: 3_500 }); // well under the 5 s heartbeat period
  asked.catch(() => undefined);
  await sleep(200);
  const info = (await q.inspect('r')).masters[0]!.info!;
  t.deepEqual(info.holders.map((h) => h.id), [GUARD_ID], 'the guard holds the name on the restarted master');
  t.is(info.queue.length, 1, 'the quorum acquire waits behind it');
  const lease = (await asked) as QuorumLease;
  t.deepEqual(lease.masters, [0, 1], 'granted on the restarted master once the guard ended, before the next periodic heartbeat');
  t.true(lease.token > before, 'its token is above every earlier one');
  await lease.release();
});

test('restartGuard: false (masters that persist every write) is not held back by a restart', async (t) => {
  const m = await startMasters(t, 3);
  const q = await m.quorum({ ...FAST, restartGuard: false });
  const before = await q.lock('n').using((l) => l.token);
  await m.restartEmpty(0);
  const lease = (await q.lock('n').tryAcquire()) as QuorumLease | null;
  t.truthy(lease, 'granted at once');
  t.deepEqual(lease!.masters, [0, 1]);
  t.true(lease!.token > before);
  await lease!.release();
  const direct = await openClient(t, m.servers[0]!.url);
  t.is(await direct.exists(bornKey('fairlock')), 0, 'no born key: the guard was never asked for');
});

test('a fresh server (never used by a quorum) waits one guard on first use, as a restarted one', async (t) => {
  const m = await startMasters(t, 3, { fresh: true });
  const q = await m.quorum(FAST);
  t.is(await q.lock('f').tryAcquire(), null, 'the first use of fresh masters finds the guard');
  const lease: Lease = await q.lock('f').acquire({ timeoutMs: 10_000 });
  t.true(lease.held);
  await lease.release();
});
