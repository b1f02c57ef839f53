/**
 * One master partitioned from one client through the TCP proxy of test/helpers/proxy.ts (the
 * sockets stay open, nothing is answered: no error, only silence), three real independent masters:
 *   - cut while the client waits on it: the wait ends (the probe's unanswered PING marks it down,
 *     well within one livenessMs), the waiter skips it and is granted on the next masters;
 *   - cut while the client holds it: the holder counts a majority again by climbing upward, or is
 *     told lost; a waiter behind it is granted only after it, with a higher token.
 */
import test, { type ExecutionContext } from 'ava';
import { FairLocks, type QuorumLocks, type QuorumQueuedEvent } from '../../src/index.js';
import { openClient, ownRedis, scopeOf } from '../helpers/cleanup.js';
import { fencedLog } from '../helpers/fenced.js';
import { startMasters, FAST, type Masters } from '../helpers/masters.js';
import { startProxy, type Proxy } from '../helpers/proxy.js';
import { queue, sectionRunner, sleep, type QuorumLease } from './kit.js';

/** A quorum whose client of master `cut` goes through a proxy (its subscriber too: duplicate() keeps the URL). */
async function quorumThrough(t: ExecutionContext, m: Masters, cut: number): Promise<{ q: QuorumLocks; proxy: Proxy }> {
  const proxy = await startProxy(m.servers[cut]!.port);
  scopeOf(t).add(() => proxy.stop());
  const clients = [];
  for (const [i, s] of m.servers.entries()) clients.push(await openClient(t, i === cut ? proxy.url : s.url));
  const q = FairLocks.quorum(clients, FAST);
  scopeOf(t).add(() => q.close());
  scopeOf(t).add(() => proxy.heal()); // runs first: the closes then go through
  return { q, proxy };
}

test('cut from master 0 while waiting on it: the waiter skips it and is granted on masters 1 and 2', async (t) => {
  const m = await startMasters(t, 3);
  const holderQ = await m.quorum();
  const { q, proxy } = await quorumThrough(t, m, 0);
  const holder = (await holderQ.lock('p').acquire()) as QuorumLease;
  const queuedOn: number[] = [];
  const onMaster1 = new Promise<void>((resolve) =>
    q.on('queued', (e: QuorumQueuedEvent) => {
      queuedOn.push(e.master);
      if (e.master === 1) resolve();
    }),
  );
  const waiter = await queue(q, 'p');
  t.deepEqual(queuedOn, [0], 'it waits on master 0 first');
  proxy.hold();
  const skipped = await Promise.race([onMaster1.then(() => true), sleep(FAST.livenessMs! * 3).then(() => false)]);
  t.true(skipped, 'the wait on the silent master ended and the waiter queued on master 1');
  await holder.release();
  const lease = (await waiter.lease) as QuorumLease;
  t.deepEqual(lease.masters, [1, 2], 'granted without master 0');
  t.true(lease.token > holder.token, 'tokens rise across the skipped master');
  await lease.release();
});

test('cut from master 1 while holding it: the holder climbs to master 2 (or is told lost); the waiter behind it comes after it', async (t) => {
  const m = await startMasters(t, 3);
  const storeServer = await ownRedis(t, { owned: true });
  const store = await openClient(t, storeServer.url);
  const sections = sectionRunner(store, 'fenced:cut');
  const { q, proxy } = await quorumThrough(t, m, 1);
  const other = await m.quorum();
  const holder = (await q.lock('h').acquire()) as QuorumLease;
  t.deepEqual(holder.masters, [0, 1]);
  let holderIn = true;
  let grantedWhileHeld = false;
  const waiter = await queue(other, 'h');
  const run = waiter.lease.then((l) => {
    if (holderIn && holder.held) grantedWhileHeld = true;
    return sections.run(l, 'waiter');
  });
  proxy.hold();
  await sleep(FAST.leaseMs! + 300);
  t.log(holder.held ? `the holder kept its lease on ${holder.masters.join(', ')}` : 'the holder was told lost');
  if (holder.held) {
    t.deepEqual(holder.masters, [0, 2], 'it restored a majority upward, without the cut master');
    t.like(await sections.run(holder, 'holder'), { accepted: true, lost: false });
  } else {
    await t.throwsAsync(holder.release(), { code: 'LOCK_LOST' });
  }
  holderIn = false;
  t.like(await run, { accepted: true }, 'the waiter is granted and writes with a higher token');
  t.false(grantedWhileHeld, 'not while the holder held');
  t.is(sections.overlaps(), 0);
  const log = await fencedLog(store, 'fenced:cut');
  t.true(log.every((e, i) => i === 0 || e.token > log[i - 1]!.token), 'tokens strictly rise');
});
