/**
 * The chain (DESIGN §8) on three real independent redis-server processes: FIFO in master 0's order
 * with every master up; one master SIGKILLed at the head, middle or tail of the chain, or
 * SIGSTOPped, while a holder holds and waiters wait: never two holders (a fenced store and an
 * in-section count), tokens rise, the holder keeps its lease, every waiter is granted; a majority
 * lost: the holder is told through its signal, acquires reject with QUORUM_LOST, nothing hangs.
 * Order comes from tokens and the fenced store, never from clocks.
 */
import test, { type ExecutionContext } from 'ava';
import type { Lease } from '../../src/index.js';
import { openClient, ownRedis } from '../helpers/cleanup.js';
import { fencedLog } from '../helpers/fenced.js';
import { startMasters, FAST, type Masters } from '../helpers/masters.js';
import { whenAborted } from '../helpers/queued.js';
import { queue, sectionRunner, traceOnFailure } from './kit.js';

test('with every master up, critical sections follow master 0\'s queue order and tokens rise', async (t) => {
  const m = await startMasters(t, 3);
  const quorums = await Promise.all([0, 1, 2].map(() => m.quorum()));
  const holder = await quorums[0]!.lock('q').acquire();
  t.deepEqual((holder as Lease & { masters: number[] }).masters, [0, 1], 'an uncontended acquire takes masters 0 and 1');
  const asked: { label: string; lease: Promise<Lease> }[] = [];
  for (let k = 0; k < 5; k++) asked.push({ label: `w${k}`, ...(await queue(quorums[k % 3]!, 'q')) });
  const info = await quorums[1]!.inspect('q');
  t.is(info.masters[0]!.info?.queue.length, 5, 'every waiter waits on master 0');
  t.is(info.masters[1]!.info?.queue.length, 0, 'and nowhere else meanwhile');
  const order: string[] = [];
  const tokens: number[] = [holder.token];
  const done = asked.map(async ({ label, lease }) => {
    const l = await lease;
    order.push(label);
    tokens.push(l.token);
    await l.release();
  });
  await holder.release();
  await Promise.all(done);
  t.deepEqual(order, ['w0', 'w1', 'w2', 'w3', 'w4']);
  t.deepEqual(tokens, [...tokens].sort((a, b) => a - b), 'tokens rise in grant order');
  t.is(new Set(tokens).size, tokens.length);
});

async function faultWhileHeld(t: ExecutionContext, target: number, fault: 'kill' | 'pause'): Promise<void> {
  const m: Masters = await startMasters(t, 3);
  const storeServer = await ownRedis(t, { owned: true });
  const store = await openClient(t, storeServer.url);
  const key = `fenced:${target}:${fault}`;
  const sections = sectionRunner(store, key);
  const [a, b, c] = await Promise.all([m.quorum(), m.quorum(), m.quorum()]);
  return traceOnFailure(t, [a!, b!, c!], async () => {
    const holder = await a!.lock('job').acquire();
    let holderIn = true;
    const grantedWhileHeld: string[] = [];
    // Each waiter runs its section once granted, in whichever order that is: with master 0 gone both
    // leave it and enqueue on master 1 as their heartbeats notice, and may swap (DESIGN §8: a client
    // cut from master 0 may pass or be passed). Awaiting w1 first hung the test until its timeout
    // whenever w2 got there first and held, waiting for its turn to write.
    const waiters = [await queue(b!, 'job'), await queue(c!, 'job')].map(async ({ lease }, k) => {
      const l = await lease;
      if (holderIn && holder.held) grantedWhileHeld.push(`w${k + 1} (token ${l.token}) while the holder held`);
      return sections.run(l, `w${k + 1}`);
    });
    for (const w of waiters) w.catch(() => undefined); // awaited below; a rejection meanwhile is not unhandled
    if (fault === 'kill') await m.kill(target);
    else m.pause(target);
    // The holder finds the master gone and climbs upward to keep a majority, then works on.
    await new Promise((r) => setTimeout(r, FAST.leaseMs! + 300));
    t.true(holder.held, `the holder keeps its lease after master ${target} went down`);
    const holds = (holder as Lease & { masters: number[] }).masters;
    t.false(holds.includes(target), 'the lost master no longer counts');
    t.true(holds.length >= 2, `it holds a majority again (${holds.join(', ')})`);
    const inspected = await b!.inspect('job');
    t.truthy(inspected.masters[target]!.error, 'inspect() reports the lost master as an error entry');
    const results = [await sections.run(holder, 'holder')];
    holderIn = false;
    results.push(...(await Promise.all(waiters)));
    t.deepEqual(results, [{ accepted: true, lost: false }, { accepted: true, lost: false }, { accepted: true, lost: false }], 'every section wrote with a rising token and none was told lost');
    t.deepEqual(grantedWhileHeld, [], 'no waiter was granted while the holder held');
    t.is(sections.overlaps(), 0, 'never two holders');
    const log = await fencedLog(store, key);
    const order = log.map((e) => e.value);
    if (target === 0 && fault === 'kill') t.true(['holder w1 w2', 'holder w2 w1'].includes(order.join(' ')), order.join(' '));
    else t.deepEqual(order, ['holder', 'w1', 'w2'], 'master 0 kept its queue order');
    t.true(log.every((e, i) => i === 0 || e.token > log[i - 1]!.token), 'tokens strictly rise');
  });
}

for (const [target, where] of [[0, 'head'], [1, 'middle'], [2, 'tail']] as const) {
  test(`master ${target} (${where}) SIGKILLed while a holder holds and two wait: one holder at a time, tokens rise, all granted`, (t) => faultWhileHeld(t, target, 'kill'));
}

test('master 1 SIGSTOPped while a holder holds and two wait: one holder at a time, tokens rise, all granted', (t) => faultWhileHeld(t, 1, 'pause'));

test('a majority lost: the holder is told through its signal, waiters and new acquires reject with QUORUM_LOST, nothing hangs', async (t) => {
  const m = await startMasters(t, 3);
  const [a, b] = await Promise.all([m.quorum(), m.quorum()]);
  const holder = await a!.lock('m').acquire();
  const waiter = await queue(b!, 'm');
  const lost = whenAborted(holder.signal);
  await Promise.all([m.kill(1), m.kill(2)]);
  const reason = await Promise.race([lost, new Promise((r) => setTimeout(() => r('not told'), FAST.leaseMs! * 3))]);
  t.is((reason as { code?: string }).code, 'LOCK_LOST', 'the holder is told once its masters no longer count a majority');
  t.false(holder.held);
  t.is(holder.remainingMs, 0);
  await t.throwsAsync(holder.release(), { code: 'LOCK_LOST' });
  await t.throwsAsync(waiter.lease, { code: 'QUORUM_LOST' }, 'a waiter queued before rejects with the typed error, not at its timeout');
  await t.throwsAsync(b!.lock('m').acquire({ timeoutMs: 20_000 }), { code: 'QUORUM_LOST' });
  await t.throwsAsync(b!.lock('m').tryAcquire(), { code: 'QUORUM_LOST' });
});

test('timeoutMs and an abort bound the whole acquire; a busy lock answers tryAcquire with null', async (t) => {
  const m = await startMasters(t, 3);
  const [a, b] = await Promise.all([m.quorum(), m.quorum()]);
  const events: string[] = [];
  b!.on('timeout', () => events.push('timeout'));
  b!.on('aborted', () => events.push('aborted'));
  const holder = await a!.lock('b').acquire();
  t.is(await b!.lock('b').tryAcquire(), null);
  await t.throwsAsync(b!.lock('b').acquire({ timeoutMs: 200 }), { code: 'LOCK_TIMEOUT' });
  const ac = new AbortController();
  const asked = b!.lock('b').acquire({ signal: ac.signal });
  setTimeout(() => ac.abort(new Error('enough')), 100);
  await t.throwsAsync(asked, { code: 'LOCK_ABORTED' });
  t.deepEqual(events, ['timeout', 'aborted']);
  await holder.release();
  const next = await b!.lock('b').using((l) => l.token);
  t.true(next > holder.token, 'the queue was left clean: the next acquire is granted at once');
  const info = await b!.inspect('b');
  t.true(info.masters.every((x) => x.info !== undefined && x.info.queue.length === 0 && x.info.holders.length === 0));
});
