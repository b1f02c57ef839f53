/**
 * FIFO across processes with every master up: four child processes (test/helpers/worker.ts, each a
 * quorum of its own over the same three masters) queue one after another behind a holder in this
 * process; they are granted in the order they queued, decided by the fencing tokens they report
 * (never by two processes' clocks), one at a time.
 */
import test from 'ava';
import { disposeAll, spawnQuorumChild, type Child } from '../helpers/children.js';
import { startMasters, FAST } from '../helpers/masters.js';

test.after.always(() => disposeAll());

test('four processes queued in turn behind a holder are granted in that order, by their tokens', async (t) => {
  const m = await startMasters(t, 3);
  const options = FAST as Record<string, number>;
  const children: Child[] = await Promise.all([0, 1, 2, 3].map(() => spawnQuorumChild(t, m.servers.map((s) => s.url), options)));
  const q = await m.quorum();
  const holder = await q.lock('fifo').acquire();
  for (const [k, child] of children.entries()) {
    child.send({ op: 'acquire', req: `r${k}`, name: 'fifo', timeoutMs: 30_000 });
    const queued = await child.expect(`r${k}`, 'queued', 30_000);
    t.is(queued.ev === 'queued' && queued.position, k + 1, `child ${k} queued at position ${k + 1} on master 0`);
  }
  await holder.release();
  // Each grant is released as soon as it is seen; the next can only come after it.
  const tokens: number[] = [];
  const granted = children.map(async (child, k) => {
    const e = await child.expect(`r${k}`, 'granted', 30_000);
    const token = e.ev === 'granted' ? e.token : NaN;
    tokens[k] = token;
    child.send({ op: 'release', req: `r${k}` });
    await child.expect(`r${k}`, 'released', 30_000);
  });
  await Promise.all(granted);
  t.true(tokens[0]! > holder.token, 'the first after the holder');
  t.deepEqual(tokens, [...tokens].sort((a, b) => a - b), `granted in queue order: tokens ${tokens.join(' < ')}`);
  t.is(new Set(tokens).size, 4);
});
